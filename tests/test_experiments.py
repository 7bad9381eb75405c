"""Each experiment runs on a tiny model, returns the documented dims and round-trips NetCDF."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr

from anchors.experiments import DEFAULT_PATHWAYS, HeadIntervention, KnockoutProfile, LensProfile, PositionControls
from anchors.results import load, save
from anchors.runner import run
from anchors.tracer import encode_batch
from anchors.readouts import Subspaces
from anchors.tracer import SITES, trace_batch
from anchors.prompts import TracedSample
from anchors.models.tiny import tiny_model

from .helpers import prompts


@pytest.fixture(scope="module")
def loaded():
    return tiny_model("qwen2_5_vl", "sdpa")


def followed_and_failed(loaded, n: int = 6, seed: int = 11) -> list[TracedSample]:
    """``n`` samples whose compliant dictionary holds ``loaded``'s greedy token for every other
    one, so that both followed and failed samples exist; the first half instructed to follow the
    text, the rest the image."""
    base = prompts(n, True, seed=seed)
    batch = encode_batch(loaded.adapter, base)
    space = Subspaces.from_ids(batch.sample_ids, [[1]] * n, [[2]] * n)
    top = trace_batch(loaded, batch, space).top_token.tolist()
    out = []
    for i, (prompt, token) in enumerate(zip(base, top)):
        others = [t for t in range(20, 400) if t != token]
        if i % 2 == 0:
            compliant, competing = (token, *others[:5]), tuple(others[5:10])
        else:
            compliant, competing = tuple(others[:5]), (token, *others[5:10])
        out.append(TracedSample(prompt, compliant, competing, task="color", instructed=("text", "vision")[2 * i // n]))
    return out


@pytest.fixture(scope="module")
def samples(loaded):
    """Six samples of the tiny Qwen2.5-VL, half followed and half failed (:func:`followed_and_failed`)."""
    return followed_and_failed(loaded)


def _round_trip(dataset: xr.Dataset, tmp_path) -> None:
    path = save(dataset, tmp_path / "result.nc")
    xr.testing.assert_identical(load(path), dataset)
    assert not (tmp_path / "result.nc.tmp").exists()


def test_knockout_profile(loaded, samples, tmp_path):
    ds = run(KnockoutProfile(windows=(1, 3)), loaded, samples, batch_size=4)
    assert ds.nssd.dims == ("sample", "pathway", "window", "layer")
    assert list(ds.pathway.values) == list(DEFAULT_PATHWAYS)
    assert ds.followed.values.tolist() == [True, False, True, False, True, False]
    assert np.isfinite(ds.nssd).all()
    assert (np.abs(ds.nssd) > 0).any()
    assert "window" not in ds.attrs  # a window sweep records the list in the config only
    assert json.loads(ds.attrs["config"])["windows"] == [1, 3]
    for key in ("model", "model_revision", "adapter", "attn_implementation", "dtype", "dictionary_hash", "versions"):
        assert key in ds.attrs
    _round_trip(ds, tmp_path)


def test_lens_profile(loaded, samples, tmp_path):
    ds = run(LensProfile(top_k=3), loaded, samples, batch_size=4)
    assert ds.readout.dims == ("sample", "layer", "site", "subspace")
    assert list(ds.site.values) == list(SITES) and list(ds.subspace.values) == ["compliant", "competing"]
    assert ds.head_attribution.dims == ("sample", "layer", "head")
    assert ds.ldar.dims == ("outcome", "layer")
    # the answer-position readout at the last layer is the model's own decision margin
    np.testing.assert_allclose(
        (ds.readout_generated.sel(site="post", subspace="compliant") - ds.readout_generated.sel(site="post", subspace="competing"))
        .isel(layer=-1).values, ds.final_margin.values, atol=1e-5)
    # LDAR at the last layer on followed samples: their final margin is positive by construction
    assert ds.followed.sum() == 3
    # the linear head attribution sums over heads to its attention term; the remainder of Eq 9 is
    # what its nonlinear scores leave of the attention attribution
    np.testing.assert_allclose(ds.head_linear.sum("head"), ds.attn_linear, atol=1e-5)
    np.testing.assert_allclose(ds.head_remainder, ds.attn_attribution_margin - ds.head_attribution.sum("head"), atol=1e-6)
    assert (np.abs(ds.head_remainder) > 1e-4).any()  # Eq 9 is not additive
    _round_trip(ds, tmp_path)


def test_head_intervention(loaded, samples, tmp_path):
    lens = run(LensProfile(top_k=3), loaded, samples, batch_size=4)
    ds = run(HeadIntervention(lens, ks=(1, 4), n_random=2, alphas=(1.0, 3.0)), loaded, samples, batch_size=4)
    assert ds.mfr.dims == ("instructed_modality", "mode", "selection", "k")
    assert ds.mfr_random_draw.dims == ("instructed_modality", "mode", "draw", "k")
    assert ds.mfr_alpha.dims == ("instructed_modality", "alpha")
    assert list(ds.instructed_modality.values) == ["text", "vision", "all"]
    assert ds.head_score.dims == ("modality", "layer", "head")
    # blocking is evaluated on followed samples (MFR 1 before), amplifying on failed ones (MFR 0)
    assert (ds.mfr_original.sel(mode="block") == 1.0).all() and (ds.mfr_original.sel(mode="amplify") == 0.0).all()
    # samples 0-2 are text-instructed (0, 2 followed), 3-5 vision (4 followed): see the fixture
    assert ds.n_evaluated.values.tolist() == [[2, 1], [1, 2], [3, 3]]
    # alpha = 1 is the identity
    assert (ds.mfr_alpha.sel(alpha=1.0) == 0.0).all()
    np.testing.assert_allclose(ds.mfr.sel(selection="random").values, ds.mfr_random_draw.mean("draw").values)
    # per-modality MFR by hand from the per-sample outcomes; the pooled one weights by sample count
    follows = ds.follows.sel(mode="block", selection="targeted")
    for modality, rows in (("text", [0, 2]), ("vision", [4]), ("all", [0, 2, 4])):
        expected = follows.isel(sample=rows).values.mean(0)
        np.testing.assert_allclose(ds.mfr.sel(instructed_modality=modality, mode="block", selection="targeted"), expected)
    # the ranking is the descending order of the scores
    for modality in ("text", "vision"):
        flat = ds.head_score.sel(modality=modality).values.reshape(-1)
        assert np.all(np.diff(flat[ds.ranking.sel(modality=modality).values]) <= 0)
    _round_trip(ds, tmp_path)


def test_head_intervention_alpha_sweep_matches_direct_scaling(loaded, samples):
    lens = run(LensProfile(top_k=3), loaded, samples, batch_size=4)
    ds = run(HeadIntervention(lens, ks=(2,), n_random=1, alphas=(5.0,)), loaded, samples, batch_size=4)
    ranking = ds.ranking.values
    n_heads = loaded.adapter.shape.n_heads
    failed = [s for s, f in zip(samples, lens.followed.values) if not f]
    followed = 0
    from anchors.interventions import HeadScale
    from anchors.readouts.metrics import decide

    for sample in failed:
        flat = ranking[0 if sample.instructed == "text" else 1][:2]
        spec = HeadScale(tuple((int(f) // n_heads, int(f) % n_heads) for f in flat), 5.0)
        batch = encode_batch(loaded.adapter, [sample.prompt])
        space = Subspaces.from_ids(batch.sample_ids, [sample.compliant_ids], [sample.competing_ids])
        followed += decide(trace_batch(loaded, batch, space, [spec]).top_token, space)[0] == "compliant"
    assert ds.mfr_alpha.sel(alpha=5.0, instructed_modality="all") == pytest.approx(followed / len(failed))


def test_position_controls(loaded, samples, tmp_path):
    swapped = []
    for s in samples:
        parts = dict(s.prompt.segments)
        order = ("context", "question", "instruction_format", "instruction_semantic")
        swapped.append(dataclasses.replace(s, prompt=dataclasses.replace(s.prompt, segments=tuple((r, parts[r]) for r in order))))
    ds = run(PositionControls(window=3), loaded, {"default": samples, "swapped": swapped}, batch_size=4)
    assert ds.nssd.dims == ("variant", "sample", "target", "layer")
    assert list(ds.target.values) == ["semantic", "format"]
    assert ds.followed.dims == ("variant", "sample")
    _round_trip(ds, tmp_path)
    with pytest.raises(ValueError, match="variant 'short' must hold the same samples"):
        run(PositionControls(), loaded, {"default": samples, "short": samples[:2]})


def test_bad_options_are_refused(loaded, samples):
    with pytest.raises(ValueError, match=r"layers \[7\] outside 0…2"):
        run(KnockoutProfile(layers=(7,)), loaded, samples)
    with pytest.raises(ValueError, match="batch_size must be ≥ 1"):
        run(LensProfile(), loaded, samples, batch_size=0)
    with pytest.raises(ValueError, match="method must be one of reuse, naive, atp, atp\\+verify, got 'fast'"):
        run(KnockoutProfile(method="fast"), loaded, samples)
    with pytest.raises(ValueError, match="max_batch_rows must be a positive integer"):
        run(KnockoutProfile(max_batch_rows=0), loaded, samples)
    with pytest.raises(ValueError, match="position controls run exact knockouts"):
        run(PositionControls(method="atp"), loaded, {"default": samples})
    with pytest.raises(ValueError, match="sample ids must be unique"):
        run(LensProfile(), loaded, samples[:2] + samples[:1])
    lens = run(LensProfile(heads=False), loaded, samples)
    with pytest.raises(ValueError, match="no per-head attribution: run .anchors lens. without --no-heads"):
        HeadIntervention(lens)


def test_head_intervention_reading_answers_from_generation(loaded, samples):
    from anchors.readouts.metrics import answer_from_generation
    from anchors.tracer import generate_batch

    lens = run(LensProfile(top_k=3), loaded, samples, batch_size=6)
    ds = run(HeadIntervention(lens, ks=(2,), n_random=1, alphas=(1.0, 50.0), answer_from="generation", max_new_tokens=3),
             loaded, samples, batch_size=6)
    config = json.loads(ds.attrs["config"])
    assert (config["answer_from"], config["max_new_tokens"]) == ("generation", 3)
    assert ds.degenerate_alpha.dims == ("instructed_modality", "alpha")
    # the clean answer of each sample, by an independent greedy generation and the text matcher
    batch = encode_batch(loaded.adapter, [s.prompt for s in samples])
    space = Subspaces.from_ids(batch.sample_ids, [s.compliant_ids for s in samples], [s.competing_ids for s in samples])
    tokens = generate_batch(loaded, batch, space, max_new_tokens=3).tokens.tolist()
    expected = [answer_from_generation(loaded.adapter.tokenizer.decode(t, skip_special_tokens=True), t,
                                       list(s.compliant_forms), list(s.competing_forms)) for t, s in zip(tokens, samples)]
    assert ds.answer.values.tolist() == expected
    evaluated = ds.answer_alpha != ""
    assert set(np.unique(ds.answer_alpha.values[evaluated.values])) <= {"compliant", "competing", "other", "degenerate"}
    assert (evaluated == ~ds.followed).all()  # the alpha sweep amplifies on samples that did not follow
