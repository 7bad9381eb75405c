"""Knockout sweeps: prefix reuse and stacked settings equal the naive sweep (one full trace per
setting) on every family's tiny instance and on both organisms. Tolerance 1e-5."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch

from anchors.datasets import to_traced, tokenise
from anchors.experiments import KnockoutProfile
from anchors.interventions import Knockout
from anchors.organism import ORGANISMS, load_organism
from anchors.prompts import TracedSample
from anchors.prompts.roles import expand_role
from anchors.organism.task import dictionaries, evaluation_set, to_modality_samples
from anchors.readouts import Subspaces
from anchors.runner import run
from anchors.tracer import encode_batch
from anchors.tracer.reuse import ReuseError, causal_prefix
from anchors.tracer.sweep import sweep_knockouts

from .helpers import prompts

TOL = 1e-5


def _settings(multimodal: bool, n_layers: int) -> list[Knockout]:
    cue = "visual" if multimodal else "context"
    pathways = [("cues", "instruction"), ("instruction", "generated"), (cue, "question"),
                ("template", cue)]  # the last one targets image tokens (bidirectional in Gemma 3)
    return [Knockout(source, target, layer, window) for source, target in pathways for window in (1, 2, 3)
            for layer in range(n_layers)]


@pytest.mark.parametrize("max_rows", [None, 4], ids=["stacked", "one-setting-per-forward"])
def test_reuse_equals_naive_on_every_family(tiny, max_rows):
    n = 3  # padded: the prompts differ in length
    batch = encode_batch(tiny.adapter, prompts(n, tiny.adapter.multimodal, seed=7))
    space = Subspaces.from_ids(batch.sample_ids, [list(range(10, 60))] * n, [list(range(60, 110))] * n)
    settings = _settings(tiny.adapter.multimodal, tiny.adapter.shape.n_layers)
    if len(tiny.adapter.attention_layers(tiny.module)) < tiny.adapter.shape.n_layers:
        # a hybrid decoder's linear-attention layers keep a recurrent state, not keys and values
        for method in ("reuse", "atp"):
            with pytest.raises(ReuseError, match="recurrent state rather than keys and values; use --method naive"):
                sweep_knockouts(tiny, batch, space, settings, method=method, max_rows=max_rows)
        return
    steps: list[int] = []
    fast = sweep_knockouts(tiny, batch, space, settings, method="reuse", max_rows=max_rows, advance=steps.append)
    naive = sweep_knockouts(tiny, batch, space, settings, method="naive")
    assert fast.exact.all() and naive.exact.all()
    assert torch.equal(fast.top_token, naive.top_token)
    torch.testing.assert_close(fast.subspace_mass, naive.subspace_mass, atol=TOL, rtol=0)
    torch.testing.assert_close(fast.full_kl, naive.full_kl, atol=TOL, rtol=0)
    assert (naive.full_kl > 1e-6).any() and (naive.subspace_mass < 1).all()
    clean, reference_clean = fast.clean, naive.clean
    fast, naive = fast.logits, naive.logits
    assert sum(steps) == 1 + len(settings)
    torch.testing.assert_close(clean.answer_logits, reference_clean.answer_logits, atol=TOL, rtol=0)
    assert torch.equal(clean.top_token, reference_clean.top_token)
    torch.testing.assert_close(fast, naive, atol=TOL, rtol=0)
    moved = (naive - reference_clean.answer_logits).abs().amax(dim=(1, 2))
    assert (moved > 1e-4).sum() > len(settings) // 2, "most knockouts should change the answer logits"


def test_causal_prefix_stops_before_a_bidirectional_block():
    causal = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    assert causal_prefix([causal[None, None]], 4) == 4
    assert causal_prefix([None], 4) == 4
    block = causal.clone()
    block[1:4, 1:4] = True  # positions 1-3 see each other (an image block)
    assert causal_prefix([block[None, None]], 2) == 1
    assert causal_prefix([block[None, None]], 5) == 5
    additive = torch.zeros(1, 1, 6, 6).masked_fill(~block, torch.finfo(torch.float32).min)
    assert causal_prefix([causal[None, None], additive], 3) == 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ORGANISMS)
def test_reuse_equals_naive_on_the_organisms(name, tmp_path):
    loaded = load_organism(name)
    examples = evaluation_set(12, 5, held_out=True, prefix="s")
    samples = to_traced(tokenise(to_modality_samples(examples, tmp_path), dictionaries(), loaded.adapter.tokenizer)[0])
    exact = {method: run(KnockoutProfile(windows=(3, 9), method=method, max_batch_rows=40), loaded, samples,
                         batch_size=6) for method in ("reuse", "naive")}
    np.testing.assert_allclose(exact["reuse"].nssd, exact["naive"].nssd, atol=TOL, rtol=0)
    np.testing.assert_allclose(exact["reuse"].p_compliant, exact["naive"].p_compliant, atol=TOL, rtol=0)
    assert np.abs(exact["naive"].nssd).max() > 0.1


def _log_odds(logits: torch.Tensor, compliant: list[int], competing: list[int]) -> torch.Tensor:
    return logits[:, compliant].logsumexp(-1) - logits[:, competing].logsumexp(-1)


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "llava", "gemma3", "llama"])
def test_atp_is_the_derivative_along_the_cut_at_each_layer(model_type):
    """Independent reference with plain hooks: z (the o_proj input) is linear in the attention
    probabilities, so blending the clean and the knocked-out z of one layer by ε moves A by ε·ΔA;
    the metric's central difference at ε = 0 is the first-order estimate AtP computes."""
    from anchors.models.tiny import tiny_model
    from anchors.prompts import ROLES
    from anchors.tracer.attribution import atp_knockouts

    from .reference import knockout_hooks

    tiny = tiny_model(model_type, "sdpa")  # AtP switches to eager for its own trace and back
    module, adapter = tiny.module, tiny.adapter
    n = 2
    batch = encode_batch(adapter, prompts(n, adapter.multimodal, seed=3))
    compliant, competing = list(range(10, 60)), list(range(60, 110))
    space = Subspaces.from_ids(batch.sample_ids, [compliant] * n, [competing] * n)
    pathways = [("cues", "instruction"), ("instruction", "generated")]
    _, effects = atp_knockouts(tiny, batch, space, pathways, [0])
    assert module.config._attn_implementation == "sdpa" and all(p.requires_grad for p in module.parameters())
    roles = [[ROLES[c] for c in row] for row in batch.roles.tolist()]

    def z_at(layer: int, pathway) -> torch.Tensor:
        store = {}
        hook = adapter.out_proj(module, layer).register_forward_pre_hook(lambda m, a: store.setdefault("z", a[0]))
        with torch.no_grad(), (knockout_hooks(module, adapter, [layer], roles, set(expand_role(pathway[0])),
                                              set(expand_role(pathway[1]))) if pathway else nullcontext()):
            module(**batch.inputs)
        hook.remove()
        return store["z"]

    def metric_with(layer: int, z: torch.Tensor) -> torch.Tensor:
        hook = adapter.out_proj(module, layer).register_forward_pre_hook(lambda m, a: (z,))
        with torch.no_grad():
            logits = module(**batch.inputs).logits[:, -1].double()
        hook.remove()
        return _log_odds(logits, compliant, competing)

    eps = 1e-2
    checked = 0
    for p, pathway in enumerate(pathways):
        for layer in range(adapter.shape.n_layers):
            clean, cut = z_at(layer, None), z_at(layer, pathway)
            derivative = (metric_with(layer, clean + eps * (cut - clean))
                          - metric_with(layer, clean - eps * (cut - clean))) / (2 * eps)
            torch.testing.assert_close(effects[p, layer].double(), derivative, atol=2e-4, rtol=2e-3)
            checked += int(derivative.abs().max() > 1e-3)
    assert checked >= 2, "too few layers with a visible effect to test against"


def test_atp_profile_schema_and_verified_settings_are_exact(tmp_path):
    from anchors.models.tiny import tiny_model
    from anchors.results import load

    loaded = tiny_model("qwen2_5_vl", "sdpa")
    base = prompts(4, True, seed=5)
    samples = [TracedSample(p, (11, 12), (13, 14), task="color", instructed="text") for p in base]
    exact = run(KnockoutProfile(windows=(1, 3)), loaded, samples, batch_size=4)
    atp = run(KnockoutProfile(windows=(1, 3), method="atp"), loaded, samples, batch_size=4, out=tmp_path / "atp.nc")
    verify = run(KnockoutProfile(windows=(1, 3), method="atp+verify", verify_top=2), loaded, samples, batch_size=4)
    assert atp.nssd.dims == exact.nssd.dims and load(tmp_path / "atp.nc").attrs["method"] == "atp"
    assert exact.exact.all() and not atp.exact.all() and atp.exact.any()
    # settings at the answer position are rerun exactly by atp; atp+verify adds the top 2 per pathway
    at_answer = atp.target == "generated"
    assert atp.exact.sel(pathway=at_answer).all() and not atp.exact.sel(pathway=~at_answer).any()
    added = verify.exact.sel(pathway=~at_answer).isel(sample=0).sum(("window", "layer"))
    assert (added == 2).all()
    for result in (atp, verify):
        np.testing.assert_allclose(result.nssd.where(result.exact), exact.nssd.where(result.exact), atol=TOL)
    assert float(np.abs(atp.nssd - exact.nssd).max()) > 0  # estimates are estimates
    # behaviour after a cut is known where the knockout ran, unknown where it was estimated
    assert set(np.unique(exact.answer_after.values)) <= {"compliant", "competing", "other"}
    assert ((atp.answer_after == "unknown") == ~atp.exact).all()
    text = atp.mfr_after.sel(instructed_modality="text")  # every sample here is text-instructed
    assert text.sel(pathway=~at_answer).isnull().all() and text.sel(pathway=at_answer).notnull().all()
    np.testing.assert_allclose(atp.p_subspace.where(atp.exact), exact.p_subspace.where(atp.exact), atol=TOL)


def test_mfr_after_a_cut_by_hand():
    import xarray as xr

    from anchors.experiments.knockout import after_cut_mfr

    # four samples: two text-instructed (both follow), two vision-instructed (one follows)
    answers = np.array([["compliant", "other"], ["competing", "compliant"], ["compliant", "compliant"],
                        ["unknown", "competing"]])  # (sample, layer)
    ds = xr.Dataset({"answer_after": (("sample", "layer"), answers)},
                    coords={"sample": list("abcd"), "layer": [0, 1], "instructed": ("sample", ["text", "text", "vision", "vision"]),
                            "followed": ("sample", [True, True, True, False])})
    out = after_cut_mfr(ds)
    assert out.mfr_after.sel(instructed_modality="text").values.tolist() == [0.5, 0.5]
    assert out.mfr_after.sel(instructed_modality="vision").values.tolist() == [1.0, 0.5]  # "unknown" is left out
    np.testing.assert_allclose(out.mfr_after.sel(instructed_modality="all").values, [2 / 3, 0.5])
    assert out.mfr_base.values.tolist() == [1.0, 0.5, 0.75]
