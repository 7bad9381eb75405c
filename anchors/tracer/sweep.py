"""Answer logits of many knockouts of one batch: the naive way (one full trace each, the reference)
or exactly with prefix reuse and settings stacked along the batch (:mod:`.reuse`)."""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch

from ..interventions.specs import Knockout
from ..models.loading import LoadedModel
from ..readouts.subspaces import Subspaces
from .encode import EncodedBatch
from .reuse import causal_prefix, clean_run, first_query, rerun
from .trace import TraceOutputs, to_host, trace_batch

EXACT_METHODS: tuple[str, ...] = ("reuse", "naive")
Method = Literal["reuse", "naive"]


def sweep_knockouts(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, knockouts: Sequence[Knockout], *,
                    method: Method = "reuse", max_rows: int | None = None,
                    advance: Callable[[int], None] = lambda n: None) -> tuple[TraceOutputs, torch.Tensor]:
    """The clean trace's outputs and the answer logits (S, B, U) on the dictionary ids after each of
    the S knockouts; ``advance(1)`` after the clean pass and per knockout. ``max_rows`` caps the
    rows (settings × samples) of one stacked forward under ``reuse`` (at least one setting)."""
    if method == "naive":
        clean = trace_batch(loaded, batch, subspaces)
        advance(1)
        logits = []
        for knockout in knockouts:
            logits.append(trace_batch(loaded, batch, subspaces, [knockout]).answer_logits)
            advance(1)
        return clean, torch.stack(logits)
    n_layers, (rows, length) = loaded.adapter.shape.n_layers, batch.roles.shape
    starts = [min(k.layers(n_layers)) for k in knockouts]
    run = clean_run(loaded, batch, subspaces, sorted(set(starts)))
    advance(1)
    groups: dict[tuple[int, int], list[int]] = {}
    for s, (knockout, start) in enumerate(zip(knockouts, starts)):
        t0 = causal_prefix(run.masks[start:], first_query(batch.roles, knockout))
        groups.setdefault((start, t0), []).append(s)
    logits = run.outputs.answer_logits[None].repeat(len(knockouts), 1, 1)
    union = subspaces.union.to(loaded.device)
    roles = batch.roles.to(loaded.device)
    per_forward = max(1, (max_rows or rows * len(knockouts)) // rows)
    for (start, t0), members in groups.items():
        if t0 >= length:  # the knockout edits no query: the clean logits
            advance(len(members))
            continue
        for at in range(0, len(members), per_forward):
            chunk = members[at: at + per_forward]
            logits[chunk] = to_host(rerun(loaded, run, roles, [knockouts[s] for s in chunk], start, t0, union))
            advance(len(chunk))
    return run.outputs, logits
