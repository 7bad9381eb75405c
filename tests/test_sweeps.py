"""Knockout sweeps: prefix reuse and stacked settings equal the naive sweep (one full trace per
setting) on every family's tiny instance and on both organisms. Tolerance 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from anchors.datasets import to_traced, tokenise
from anchors.experiments import KnockoutProfile
from anchors.interventions import Knockout
from anchors.organism import ORGANISMS, load_organism
from anchors.organism.task import dictionaries, evaluation_set, to_modality_samples
from anchors.readouts import Subspaces
from anchors.runner import run
from anchors.tracer import encode_batch
from anchors.tracer.reuse import causal_prefix
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
    steps: list[int] = []
    clean, fast = sweep_knockouts(tiny, batch, space, settings, method="reuse", max_rows=max_rows, advance=steps.append)
    reference_clean, naive = sweep_knockouts(tiny, batch, space, settings, method="naive")
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
