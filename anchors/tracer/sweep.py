"""Answer logits of many knockouts of one batch, by one of four methods:

- ``naive``: one full trace per setting (the reference);
- ``reuse``: exact, from the clean run's layer inputs, keys and values, settings stacked along the
  batch (:mod:`.reuse`);
- ``atp``: attribution-patching estimates from one forward and one backward pass
  (:mod:`.attribution`); settings whose exact rerun is a single position (targets at the answer
  position) are computed exactly, since that costs about 1/T of a forward each;
- ``atp+verify``: ``atp``, then the exact knockout for the ``verify_top`` settings per pathway with
  the largest estimated mean |NSSD|.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import torch

from ..errors import InputError
from ..interventions.specs import KNOCKOUT_METHODS, Knockout
from ..models.loading import LoadedModel
from ..readouts.metrics import nssd
from ..readouts.subspaces import Subspaces
from .attribution import atp_knockouts
from .encode import EncodedBatch
from .reuse import CleanRun, causal_prefix, clean_run, first_query, rerun
from .trace import TraceOutputs, to_host, trace_batch

Method = Literal["reuse", "naive", "atp", "atp+verify"]  # one of KNOCKOUT_METHODS
Advance = Callable[[int], None]


@dataclass
class Sweep:
    """The clean trace's outputs; the answer logits (S, B, U) on the dictionary ids after each of the
    S knockouts; and which settings are exact (S,) rather than estimated."""

    clean: TraceOutputs
    logits: torch.Tensor
    exact: torch.Tensor


def sweep_steps(n_settings: int, n_pathways: int, method: str, verify_top: int = 0) -> int:
    """How many times :func:`sweep_knockouts` calls ``advance(1)``."""
    if method in ("reuse", "naive"):
        return 1 + n_settings
    return 1 + (min(n_settings, verify_top * n_pathways) if method == "atp+verify" else 0)


def sweep_knockouts(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, knockouts: Sequence[Knockout], *,
                    method: Method = "reuse", max_rows: int | None = None, verify_top: int = 5,
                    advance: Advance = lambda n: None) -> Sweep:
    """Every knockout's answer logits by ``method``; ``max_rows`` caps the rows (settings × samples)
    of one stacked rerun (at least one setting). ``advance`` counts :func:`sweep_steps`."""
    if method not in KNOCKOUT_METHODS:
        raise InputError(f"knockout method {method!r} is not one of {', '.join(KNOCKOUT_METHODS)}")
    if method == "naive":
        clean = trace_batch(loaded, batch, subspaces)
        advance(1)
        logits = []
        for knockout in knockouts:
            logits.append(trace_batch(loaded, batch, subspaces, [knockout]).answer_logits)
            advance(1)
        return Sweep(clean, torch.stack(logits), torch.ones(len(knockouts), dtype=torch.bool))
    n_layers = loaded.adapter.shape.n_layers
    starts = sorted({min(k.layers(n_layers)) for k in knockouts})
    if method == "reuse":
        run = clean_run(loaded, batch, subspaces, starts)
        advance(1)
        logits = run.outputs.answer_logits[None].repeat(len(knockouts), 1, 1)
        rerun_exact(loaded, run, batch, subspaces, knockouts, range(len(knockouts)), logits, max_rows, advance)
        return Sweep(run.outputs, logits, torch.ones(len(knockouts), dtype=torch.bool))
    return _attribution(loaded, batch, subspaces, knockouts, starts, method, max_rows, verify_top, advance)


def rerun_exact(loaded: LoadedModel, run: CleanRun, batch: EncodedBatch, subspaces: Subspaces,
                knockouts: Sequence[Knockout], chosen: Sequence[int], logits: torch.Tensor, max_rows: int | None,
                advance: Advance) -> None:
    """Write the exact logits of the ``chosen`` knockouts into ``logits``, grouping those that share
    a start layer and a first edited position into stacked reruns."""
    n_layers, (rows, length) = loaded.adapter.shape.n_layers, batch.roles.shape
    groups: dict[tuple[int, int], list[int]] = {}
    for s in chosen:
        start = min(knockouts[s].layers(n_layers))
        groups.setdefault((start, suffix_start(run, batch, knockouts[s], n_layers)), []).append(s)
    union, roles = subspaces.union.to(loaded.device), batch.roles.to(loaded.device)
    per_forward = max(1, (max_rows or rows * len(knockouts)) // rows)
    for (start, t0), members in groups.items():
        if t0 >= length:  # the knockout edits no query: the clean logits
            logits[members] = run.outputs.answer_logits
            advance(len(members))
            continue
        for at in range(0, len(members), per_forward):
            chunk = members[at: at + per_forward]
            logits[chunk] = to_host(rerun(loaded, run, roles, [knockouts[s] for s in chunk], start, t0, union))
            advance(len(chunk))


def suffix_start(run: CleanRun, batch: EncodedBatch, knockout: Knockout, n_layers: int) -> int:
    """The first position a knockout's rerun must recompute."""
    start = min(knockout.layers(n_layers))
    return causal_prefix(run.masks[start:], first_query(batch.roles, knockout))


def _attribution(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, knockouts: Sequence[Knockout],
                 starts: Sequence[int], method: str, max_rows: int | None, verify_top: int, advance: Advance) -> Sweep:
    n_layers, length = loaded.adapter.shape.n_layers, batch.roles.shape[1]
    pathways = list(dict.fromkeys((k.source, k.target) for k in knockouts))
    run, effects = atp_knockouts(loaded, batch, subspaces, pathways, starts)
    advance(1)
    base = run.outputs.answer_logits
    shift = torch.stack([effects[pathways.index((k.source, k.target)), list(k.layers(n_layers))].sum(0)
                         for k in knockouts])  # (S, B): estimated change of the log-odds
    logits = base[None] + shift[..., None] * subspaces.compliant[None].to(base.dtype)
    single = [s for s, k in enumerate(knockouts) if suffix_start(run, batch, k, n_layers) >= length - 1]
    exact = torch.zeros(len(knockouts), dtype=torch.bool)
    rerun_exact(loaded, run, batch, subspaces, knockouts, single, logits, max_rows, lambda n: None)
    exact[single] = True
    if method == "atp+verify":
        strength = torch.stack([nssd(base, after, subspaces).abs().mean() for after in logits])
        chosen = []
        for pathway in pathways:
            members = [s for s, k in enumerate(knockouts) if (k.source, k.target) == pathway and not exact[s]]
            chosen += sorted(members, key=lambda s: -float(strength[s]))[:verify_top]
        advance(sweep_steps(len(knockouts), len(pathways), method, verify_top) - 1 - len(chosen))
        rerun_exact(loaded, run, batch, subspaces, knockouts, chosen, logits, max_rows, advance)
        exact[chosen] = True
    return Sweep(run.outputs, logits, exact)
