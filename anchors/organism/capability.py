"""A capability to measure on the organism (issue 12, Table 1's question in miniature): answering
the colour when image and text *agree*. A quarter of the organism's training examples agree, so it
learned this alongside arbitration; blocking the heads that carry the arbitration should leave it
intact if those heads are specific.

:func:`agreement_capability` blocks, at the instruction tokens, the top-k heads of each instructed
modality's lens ranking (as :class:`~anchors.experiments.HeadIntervention` does) or k random
heads, and scores the greedy answer on agreeing examples instructed with that modality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import xarray as xr

from ..experiments.base import draw_heads, softmax_pool
from ..experiments.ranking import rank_heads
from ..interventions.specs import HeadScale
from ..models.loading import LoadedModel
from ..prompts.prompt import MODALITIES, Prompt
from ..readouts.subspaces import Subspaces
from ..results.heads import split_heads
from ..results.provenance import write_result
from ..results.variables import describe
from ..tracer.encode import encode_batch
from ..tracer.trace import trace_batch
from .task import COLOURS, make_example
from .train import answer_token

CONDITIONS: tuple[str, ...] = ("none", "targeted", "random")


def agreement_capability(loaded: LoadedModel, lens: xr.Dataset, ks: Sequence[int], *, n: int = 64, n_random: int = 5,
                         seed: int = 0, role: str = "instruction", out: str | Path | None = None) -> xr.Dataset:
    """``accuracy`` (instructed_modality, condition, k, draw) on ``n`` agreeing held-in examples
    (half per instructed modality) with no heads, the modality's top-k heads or k random heads
    (drawn from softmax-attention layers) blocked at ``role``; ``none`` is stored at every k,
    ``targeted`` at draw 0. Written to ``out`` when given, with every result's provenance."""
    adapter, tokenizer = loaded.adapter, loaded.adapter.tokenizer
    rng = np.random.default_rng(seed)
    examples = [make_example(rng, i, conflict=False, instructed=MODALITIES[i % 2], prefix="agree") for i in range(n)]
    encoded = encode_batch(adapter, [Prompt(e.example_id, e.segments, image=e.image) for e in examples])
    colours = {c: answer_token(tokenizer, c) for c in COLOURS}
    truth = torch.tensor([colours[e.target] for e in examples])
    space = Subspaces.from_ids(encoded.sample_ids, [[colours[e.target]] for e in examples],
                               [[i for c, i in colours.items() if c != e.target] for e in examples])
    ranked, n_heads, pool = rank_heads(lens), adapter.shape.n_heads, softmax_pool(adapter)

    def accuracy(flat: Sequence[int], rows: np.ndarray) -> float:
        spec = [HeadScale(split_heads(flat, n_heads), 0.0, role=role)] if len(flat) else []
        top = trace_batch(loaded, encoded, space, spec).top_token
        return float((top == truth)[torch.from_numpy(rows)].float().mean())

    scores = np.full((len(MODALITIES), len(CONDITIONS), len(ks), n_random), np.nan)
    instructed = np.array([e.instructed for e in examples])
    for m, modality in enumerate(MODALITIES):
        rows = instructed == modality
        scores[m, 0, :, 0] = accuracy([], rows)
        order = ranked.ranking.sel(modality=modality).values
        for j, k in enumerate(ks):
            scores[m, 1, j, 0] = accuracy(order[:k], rows)
            scores[m, 2, j] = [accuracy(draw_heads(rng, pool, k), rows) for _ in range(n_random)]
    result = describe(xr.Dataset(
        {"accuracy": (("instructed_modality", "condition", "k", "draw"), scores)},
        coords={"instructed_modality": list(MODALITIES), "condition": list(CONDITIONS), "k": list(ks),
                "draw": np.arange(n_random)},
    ))
    config = {"ks": [int(k) for k in ks], "n": n, "n_random": n_random, "seed": seed, "role": role}
    return write_result(result, out, loaded.provenance, "organism_agreement", config, n_samples=n,
                        dictionary_hash=f"colours:{','.join(COLOURS)}", batch_size=n)
