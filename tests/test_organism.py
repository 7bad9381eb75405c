"""The shipped organism: recorded behaviour, a reproducible training smoke run, and heads that
the toolkit's attribution finds and that causally drive modality following."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anchors.datasets import to_traced, tokenise
from anchors.models.organisms import ARCHITECTURES
from anchors.organism import ORGANISMS, load_organism, organism_path
from anchors.organism.constraints import Constraint, constrained
from anchors.organism.task import dictionaries, evaluation_set, to_modality_samples
from anchors.organism.train import SMOKE, TrainConfig, train_model
from anchors.readouts.metrics import decide
from anchors.experiments import HeadIntervention, KnockoutProfile, LensProfile
from anchors.results import load
from anchors.runner import run
from anchors.tracer import batches
from anchors.tracer import trace_batch


def _record(name: str) -> dict:
    return json.loads((organism_path(name) / "organism.json").read_text())


def _traced(loaded, examples, tmp_path):
    samples = to_modality_samples(examples, tmp_path / "images")
    kept, report = tokenise(samples, dictionaries(), loaded.adapter.tokenizer)
    assert report.kept == len(samples)
    return to_traced(kept)


def _mfr_by_intent(loaded, traced) -> dict[str, float]:
    answers = []
    for batch in batches(loaded.adapter, traced, 50):
        answers += decide(trace_batch(loaded, batch.encoded, batch.subspaces).top_token, batch.subspaces)
    return {m: float(np.mean([a == "compliant" for a, s in zip(answers, traced) if s.instructed == m]))
            for m in ("text", "vision")}


@pytest.mark.parametrize("name", ORGANISMS)
def test_shipped_organism_follows_held_in_and_partly_held_out_wordings(name, tmp_path):
    loaded = load_organism(name)
    record = _record(name)
    for split, seed, held_out in (("held_in", 12345, False), ("held_out", 12346, True)):
        traced = _traced(loaded, evaluation_set(400, seed, held_out=held_out, prefix=split), tmp_path / split)
        measured = _mfr_by_intent(loaded, traced)
        for modality, value in measured.items():
            # the toolkit's MFR (nnsight trace, dictionary decision) reproduces the recorded metric
            assert value == pytest.approx(record["metrics"][split][f"follow_{modality}"], abs=1e-9)
            if not held_out:
                assert value >= 0.95, (split, modality, value)
            elif name in ARCHITECTURES:  # anchored generalises the text wordings poorly (docs/explanation/organism.md)
                assert 0.60 <= value <= 0.90, (split, modality, value)


@pytest.mark.parametrize("name", ORGANISMS)
def test_training_smoke_run_reproduces_the_recorded_losses(name):
    recorded = _record(name)["smoke"]
    assert recorded["config"]["steps"] <= 100 and recorded["config"]["threads"] == SMOKE.threads
    losses = train_model(TrainConfig.from_dict(recorded["config"]))[3]
    assert losses[-1] == pytest.approx(recorded["losses"][-1], rel=1e-5)
    assert losses == pytest.approx(recorded["losses"], rel=1e-5)


@pytest.fixture(scope="module")
def organism_samples(tmp_path_factory):
    loaded = load_organism()
    folder = tmp_path_factory.mktemp("organism")
    examples = evaluation_set(96, 1001, held_out=False, prefix="in") + evaluation_set(96, 2002, held_out=True, prefix="out")
    return loaded, _traced(loaded, examples, folder)


def test_arbitration_sits_at_the_answer_position_in_the_organism(organism_samples):
    """The knockout profile that decides where to intervene: cutting instruction -> answer
    position in the first layers collapses following; cutting cues -> instruction does not."""
    loaded, traced = organism_samples
    ko = run(KnockoutProfile(windows=(3,), layers=(1,),
                             pathways=("instruction->generated", "context->instruction", "visual->instruction")),
             loaded, traced[:48], batch_size=48)
    followed = ko.where(ko.followed, drop=True).nssd.sel(window=3, layer=1).mean("sample")
    assert float(followed.sel(pathway="instruction->generated")) < -1.0
    assert abs(float(followed.sel(pathway="context->instruction"))) < 0.1
    assert abs(float(followed.sel(pathway="visual->instruction"))) < 0.1


def test_top_heads_ranked_by_the_toolkit_drive_modality_following(organism_samples):
    """Issue check: for some k <= 25% of the heads, blocking the top-k heads (ranked by Eq 9
    attribution) lowers MFR on followed samples by >= 20 points and by at least twice the mean drop
    of 5 random-k draws; amplifying them raises MFR on failed samples above the random-k control.
    Run at the answer position, where the organism arbitrates (see the knockout test above)."""
    loaded, traced = organism_samples
    n_heads = loaded.adapter.shape.n_layers * loaded.adapter.shape.n_heads
    ks = (8, 12)
    assert max(ks) <= n_heads // 4
    lens = run(LensProfile(top_k=5, readout_role="generated"), loaded, traced, batch_size=48)
    result = run(HeadIntervention(lens, ks=ks, amplify_alpha=4.0, alphas=(4.0,), n_random=5, role="generated"),
                 loaded, traced, batch_size=48)
    pooled = result.sel(instructed_modality="all")
    block, amplify = pooled.sel(mode="block"), pooled.sel(mode="amplify")
    assert float(block.mfr_original) == 1.0 and float(amplify.mfr_original) == 0.0
    drop_targeted = 1.0 - block.mfr.sel(selection="targeted")
    drop_random = 1.0 - block.mfr_random_draw.mean("draw")
    passing = (drop_targeted >= 0.20) & (drop_targeted >= 2 * drop_random)
    assert bool(passing.any()), (drop_targeted.values, drop_random.values)
    k = int(result.k.values[np.argmax(passing.values)])
    assert float(amplify.mfr.sel(selection="targeted", k=k)) > float(amplify.mfr.sel(selection="random", k=k))


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "llava"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_training_constraints_are_exactly_the_knockout_edit(model_type, attn):
    """The constraint hooks (plain forward pre-hooks) give the logits of a trace with the same
    knockouts, and the cut has an effect."""
    import torch

    from anchors.models.tiny import tiny_model
    from anchors.readouts import Subspaces
    from anchors.tracer import encode_batch, trace_batch

    from .helpers import prompts

    tiny = tiny_model(model_type, attn)
    batch = encode_batch(tiny.adapter, prompts(3, True, seed=2))
    constraints = (Constraint("visual+context", "instruction", 0, 1), Constraint("instruction", "generated", 2, 2))
    space = Subspaces.from_ids(batch.sample_ids, [[5, 6]] * 3, [[7, 8]] * 3)
    traced = trace_batch(tiny, batch, space, [k for c in constraints for k in c.knockouts()])
    with torch.no_grad(), constrained(tiny.module, tiny.adapter, constraints) as switch:
        switch.roles = batch.roles
        hooked = tiny.module(**batch.inputs).logits[:, -1, space.union]
        switch.on = False
        unconstrained = tiny.module(**batch.inputs).logits[:, -1, space.union]
    torch.testing.assert_close(hooked, traced.answer_logits, atol=1e-6, rtol=0)
    assert (hooked - unconstrained).abs().max() > 1e-3
    assert not any(module._forward_pre_hooks for module in tiny.module.modules())  # removed on exit


def _flat(summary: dict, prefix: str = "") -> dict:
    """Nested dicts and lists as one level of numbers, for pytest.approx."""
    out = {}
    for key, value in summary.items():
        if isinstance(value, list):
            value = dict(enumerate(value))
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@pytest.mark.slow
def test_the_planted_route_is_recovered_and_the_organisms_are_told_apart():
    """With no constraint at run time, the toolkit finds the anchored organism's planted route
    (cues -> instruction shallow, instruction -> answer deep, top heads deep, no direct cues ->
    answer route) and a different, shallow answer-position mechanism in the primary organism; the
    numbers reproduce those recorded in each organism.json (and quoted in docs/explanation/organism.md)."""
    from anchors.organism.route import measure_route

    anchored, plain = measure_route("anchored"), measure_route("qwen2_5_vl")
    half, nssd = anchored["layers"] // 2, anchored["most_negative_nssd"]
    assert nssd["visual+context->instruction"]["layer"] < half <= nssd["instruction->generated"]["layer"]
    assert abs(anchored["mfr_cut_cues_to_answer_all_layers"] - anchored["mfr"]) < 0.10
    assert anchored["followed_mfr_cut_instruction_to_answer_upper_half"] <= 0.50  # a drop of >= 50 points
    assert all(layer >= half for layers in anchored["top5_head_layers"].values() for layer in layers)
    # the primary organism: the answer position reads the instruction in the first layers instead
    assert plain["most_negative_nssd"]["instruction->generated"]["layer"] < plain["layers"] // 2
    assert abs(plain["most_negative_nssd"]["visual+context->instruction"]["nssd"]) < 0.1
    assert abs(nssd["visual+context->instruction"]["nssd"]) > 1.0
    assert plain["followed_mfr_cut_instruction_to_answer_upper_half"] == 1.0
    for name, measured in (("anchored", anchored), ("qwen2_5_vl", plain)):
        recorded = _flat(_record(name)["route"])
        assert _flat(measured) == pytest.approx(recorded, abs=2e-3), name


def test_blocking_the_arbitration_heads_leaves_the_agreement_capability_intact(tmp_path):
    """Issue 12's capability on the organism, at the site its arbitration lives (the answer
    position): the top-8 text heads that take the text MFR down leave the accuracy on agreeing
    examples at 1; the same numbers docs/explanation/organism.md reports, on fewer samples."""
    from anchors.organism.capability import agreement_capability

    loaded = load_organism()
    traced = _traced(loaded, evaluation_set(64, 0, held_out=False, prefix="s"), tmp_path)
    lens = run(LensProfile(readout_role="generated"), loaded, traced, batch_size=32)
    heads = run(HeadIntervention(lens, ks=(8,), n_random=2, alphas=(1.0,), role="generated"), loaded, traced,
                batch_size=32)
    agreement = agreement_capability(loaded, lens, (8,), n=32, n_random=2, role="generated",
                                     out=tmp_path / "agreement.nc")
    # saved through the one writer, with every result's provenance (issue 22)
    assert set(heads.attrs) - {"sweep_fingerprint", "cli_config", "top_k", "method", "window"} <= set(
        load(tmp_path / "agreement.nc").attrs)
    assert agreement.attrs["experiment"] == "organism_agreement" and agreement.attrs["role"] == "generated"
    assert dict(agreement.accuracy.sizes) == {"instructed_modality": 2, "condition": 3, "k": 1, "draw": 2}
    assert agreement.accuracy.sel(condition="targeted").isel(draw=1).isnull().all()
    text = agreement.accuracy.sel(instructed_modality="text")
    assert float(text.sel(condition="none").isel(k=0, draw=0)) == 1.0
    assert float(text.sel(condition="targeted", k=8).isel(draw=0)) >= 0.95
    drop = heads.sel(instructed_modality="text", mode="block")
    assert float(drop.mfr.sel(selection="targeted", k=8)) < float(drop.mfr_original) - 0.3
