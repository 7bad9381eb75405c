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

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Literal, Sequence

import nnsight
import torch

from ..errors import InputError
from ..interventions.specs import EXACT_KNOCKOUT_METHODS, KNOCKOUT_METHODS, Knockout, check_remote_method
from ..models.adapters import hf_module
from ..models.loading import LoadedModel
from ..readouts.metrics import nssd
from ..readouts.subspaces import Subspaces
from .attribution import atp_knockouts
from .encode import EncodedBatch
from .remote import remote_kwargs
from .reuse import (CleanRun, ReuseError, captured, causal_prefix, clean_readouts, clean_run, clean_trace_options,
                    first_query, rerun)
from .trace import TraceOutputs, to_host, trace_batch

Method = Literal["reuse", "naive", "atp", "atp+verify"]  # one of KNOCKOUT_METHODS
Advance = Callable[[int], None]


@dataclass
class Sweep:
    """The clean trace's outputs and, after each of the S knockouts: the answer logits (S, B, U) on
    the dictionary ids; which settings are exact (S,) rather than estimated; and, where exact, the
    greedy token (S, B; -1 where estimated), the probability of the decision subspace and the KL
    from the clean next-token distribution over the whole vocabulary (S, B; NaN where estimated)."""

    clean: TraceOutputs
    logits: torch.Tensor
    exact: torch.Tensor
    top_token: torch.Tensor
    subspace_mass: torch.Tensor
    full_kl: torch.Tensor

    @classmethod
    def estimated(cls, clean: TraceOutputs, logits: torch.Tensor) -> "Sweep":
        """A sweep whose settings are all still estimates (their exact values filled in later)."""
        settings, rows = logits.shape[:2]
        return cls(clean, logits, torch.zeros(settings, dtype=torch.bool), torch.full((settings, rows), -1),
                   torch.full((settings, rows), float("nan")), torch.full((settings, rows), float("nan")))

    def fill(self, chosen: Sequence[int], values: dict[str, torch.Tensor]) -> None:
        """Exact results for the ``chosen`` settings (``values`` as :func:`~.reuse.rerun` returns them)."""
        self.logits[chosen] = values["answer_logits"]
        self.top_token[chosen] = values["top_token"]
        self.subspace_mass[chosen] = values["subspace_mass"]
        self.full_kl[chosen] = values["full_kl"]
        self.exact[chosen] = True


def sweep_steps(n_settings: int, n_pathways: int, method: str, verify_top: int = 0) -> int:
    """How many times :func:`sweep_knockouts` calls ``advance(1)``."""
    if method in EXACT_KNOCKOUT_METHODS:
        return 1 + n_settings
    return 1 + (min(n_settings, verify_top * n_pathways) if method == "atp+verify" else 0)


def sweep_knockouts(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, knockouts: Sequence[Knockout], *,
                    method: Method = "reuse", max_rows: int | None = None, verify_top: int = 5,
                    advance: Advance = lambda n: None) -> Sweep:
    """Every knockout's answer logits by ``method``; ``max_rows`` caps the rows (settings × samples)
    of one stacked rerun (at least one setting). ``advance`` counts :func:`sweep_steps`."""
    if method not in KNOCKOUT_METHODS:
        raise InputError(f"knockout method {method!r} is not one of {', '.join(KNOCKOUT_METHODS)}")
    if loaded.remote:
        check_remote_method(method)
    if method == "naive":
        if loaded.remote:
            clean, cuts = _naive_in_one_request(loaded, batch, subspaces, knockouts)
            advance(1 + len(knockouts))
        else:
            clean = trace_batch(loaded, batch, subspaces, keep_log_probs=True)
            advance(1)
            cuts = []
            for knockout in knockouts:
                cuts.append(trace_batch(loaded, batch, subspaces, [knockout], reference_log_probs=clean.log_probs))
                advance(1)
        sweep = Sweep.estimated(clean, clean.answer_logits[None].repeat(len(knockouts), 1, 1))
        for s, cut in enumerate(cuts):
            sweep.fill([s], {"answer_logits": cut.answer_logits[None], "top_token": cut.top_token[None],
                             "subspace_mass": cut.subspace_mass[None], "full_kl": cut.full_kl[None]})
        return sweep
    n_layers = loaded.adapter.shape.n_layers
    if len(loaded.adapter.attention_layers(loaded.model)) < n_layers:
        raise ReuseError(f"--method {method} reruns layers from a cached prefix, but this hybrid decoder's "
                         "linear-attention layers keep a recurrent state rather than keys and values; use --method naive")
    starts = sorted({min(k.layers(n_layers)) for k in knockouts})
    if method == "reuse" and loaded.remote:
        sweep = _reuse_in_one_request(loaded, batch, subspaces, knockouts, starts, max_rows)
        advance(1 + len(knockouts))
        return sweep
    if method == "reuse":
        run = clean_run(loaded, batch, subspaces, starts)
        advance(1)
        sweep = Sweep.estimated(run.outputs, run.outputs.answer_logits[None].repeat(len(knockouts), 1, 1))
        rerun_exact(loaded, run, batch, subspaces, knockouts, range(len(knockouts)), sweep, max_rows, advance)
        return sweep
    return _attribution(loaded, batch, subspaces, knockouts, starts, method, max_rows, verify_top, advance)


def _naive_in_one_request(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces,
                          knockouts: Sequence[Knockout]) -> tuple[TraceOutputs, list[TraceOutputs]]:
    """A remote model's naive sweep of one batch as one request (``model.session``): the clean
    trace and every knockout's run on the server, and the clean next-token log-probabilities that
    ``full_kl`` compares against (batch × vocabulary) never travel."""
    with loaded.model.session(**remote_kwargs(loaded)):
        clean = trace_batch(loaded, batch, subspaces, keep_log_probs=True, remote=False)
        cuts = [trace_batch(loaded, batch, subspaces, [k], reference_log_probs=clean.log_probs, remote=False)
                for k in knockouts]
        result = nnsight.save((replace(clean, log_probs=None), cuts))
    return result


def rerun_groups(masks: Sequence[torch.Tensor | None], roles: torch.Tensor, knockouts: Sequence[Knockout],
                 chosen: Sequence[int], n_layers: int) -> dict[tuple[int, int], list[int]]:
    """The ``chosen`` knockouts grouped by (start layer, first position to recompute): each group's
    reruns are stacked. ``masks`` are the clean run's per layer (None: causal, as a dry run assumes)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for s in chosen:
        groups.setdefault((min(knockouts[s].layers(n_layers)), suffix_start(masks, roles, knockouts[s], n_layers)),
                          []).append(s)
    return groups


def suffix_start(masks: Sequence[torch.Tensor | None], roles: torch.Tensor, knockout: Knockout, n_layers: int) -> int:
    """The first position a knockout's rerun must recompute, given the clean run's masks per layer."""
    return causal_prefix(masks[min(knockout.layers(n_layers)):], first_query(roles, knockout))


def per_rerun(rows: int, n_settings: int, max_rows: int | None) -> int:
    """Settings stacked into one rerun: as many as ``max_rows`` (settings × samples) allows, at least one."""
    return max(1, (max_rows or rows * n_settings) // rows)


def count_reruns(groups: dict[tuple[int, int], list[int]], length: int, per_forward: int) -> int:
    """The stacked reruns :func:`rerun_exact` runs for ``groups`` (none where no query is edited)."""
    return sum(-(-len(members) // per_forward) for (_, t0), members in groups.items() if t0 < length)


def rerun_exact(loaded: LoadedModel, run: CleanRun, batch: EncodedBatch, subspaces: Subspaces,
                knockouts: Sequence[Knockout], chosen: Sequence[int], sweep: Sweep, max_rows: int | None,
                advance: Advance) -> None:
    """Fill in the exact results of the ``chosen`` knockouts (:func:`exact_reruns`, here)."""
    for members, values in exact_reruns(loaded.adapter, hf_module(loaded.model), run, batch.roles.to(loaded.device),
                                        subspaces.to(loaded.device), knockouts, chosen, max_rows):
        sweep.fill(members, {k: to_host(v) for k, v in values.items()})
        advance(len(members))


def exact_reruns(adapter: Any, root: Any, run: CleanRun, roles: torch.Tensor, space: Subspaces,
                 knockouts: Sequence[Knockout], chosen: Sequence[int],
                 max_rows: int | None) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """The exact results of the ``chosen`` knockouts, as (settings, :func:`~.reuse.rerun`'s fields),
    grouping those that share a start layer and a first edited position into stacked reruns.
    ``root`` as :func:`~.reuse.rerun` takes it; ``roles`` and ``space`` on the model's device."""
    n_layers, (rows, length) = adapter.shape.n_layers, roles.shape
    per_forward = per_rerun(rows, len(knockouts), max_rows)
    clean = run.outputs
    for (start, t0), members in rerun_groups(run.masks, roles, knockouts, chosen, n_layers).items():
        if t0 >= length:  # the knockout edits no query: the clean run's results
            yield members, {"answer_logits": clean.answer_logits, "top_token": clean.top_token,
                            "subspace_mass": clean.subspace_mass, "full_kl": torch.zeros(rows)}
            continue
        for at in range(0, len(members), per_forward):
            chunk = members[at: at + per_forward]
            yield chunk, rerun(adapter, root, run, roles, [knockouts[s] for s in chunk], start, t0, space)


def _reuse_in_one_request(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces,
                          knockouts: Sequence[Knockout], starts: Sequence[int], max_rows: int | None) -> Sweep:
    """A remote model's ``reuse`` sweep of one batch as one request (a session of two clean
    traces): the first keeps every layer's keys and values, the second every layer's inputs, and
    the reruns call the decoder layers on the server inside it (envoy calls, which ndif's sandbox
    forwards to the model's host); only the readouts come back. Two traces because in the sandbox a
    layer whose input the block reads runs on a copy of its inputs, so its key/value cache update
    never reaches the cache the model returns."""
    model, adapter = loaded.model, loaded.adapter
    with torch.no_grad(), model.session(**remote_kwargs(loaded)):
        with model.trace(batch.inputs, **clean_trace_options()):
            cache = model.output.past_key_values
        with model.trace(batch.inputs, logits_to_keep=1, use_cache=False):
            space = subspaces.to(batch.roles.device)
            saved = {**clean_readouts(model, adapter, space, starts), "cache": cache}
            run = captured(saved, saved["answer"], adapter)
            results = list(exact_reruns(adapter, model, run, batch.roles, space, knockouts, range(len(knockouts)),
                                        max_rows))
        result = nnsight.save((replace(run.outputs, log_probs=None), results))
    clean, results = result
    sweep = Sweep.estimated(clean, clean.answer_logits[None].repeat(len(knockouts), 1, 1))
    for members, values in results:
        sweep.fill(members, values)
    return sweep


def sweep_forwards(roles: torch.Tensor, knockouts: Sequence[Knockout], method: str, n_layers: int,
                   max_rows: int | None = None, verify_top: int = 5) -> tuple[int, bool]:
    """The forwards :func:`sweep_knockouts` runs on a batch with these ``roles`` (B, T), counted
    without a model: traces (``atp``'s with its backward pass) and stacked reruns; and whether the
    count is an upper bound (``atp+verify``: which settings get verified is known only after the
    estimate). Reruns are grouped as if every layer's mask were causal; a family whose image
    tokens attend to each other both ways (Gemma 3) can start some reruns earlier."""
    if method == "naive":
        return 1 + len(knockouts), False
    rows, length = roles.shape
    masks = [None] * n_layers
    per_forward = per_rerun(rows, len(knockouts), max_rows)
    if method == "reuse":
        return 1 + count_reruns(rerun_groups(masks, roles, knockouts, range(len(knockouts)), n_layers), length,
                                per_forward), False
    single = [s for s, k in enumerate(knockouts) if suffix_start(masks, roles, k, n_layers) >= length - 1]
    forwards = 1 + count_reruns(rerun_groups(masks, roles, knockouts, single, n_layers), length, per_forward)
    if method == "atp+verify":
        pathways = {(k.source, k.target) for k in knockouts}
        open_settings = len(knockouts) - len(single)
        return forwards + min(open_settings, verify_top * len(pathways)), True
    return forwards, False


def _attribution(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, knockouts: Sequence[Knockout],
                 starts: Sequence[int], method: str, max_rows: int | None, verify_top: int, advance: Advance) -> Sweep:
    n_layers, length = loaded.adapter.shape.n_layers, batch.roles.shape[1]
    pathways = list(dict.fromkeys((k.source, k.target) for k in knockouts))
    run, effects = atp_knockouts(loaded, batch, subspaces, pathways, starts)
    advance(1)
    base = run.outputs.answer_logits
    shift = torch.stack([effects[pathways.index((k.source, k.target)), list(k.layers(n_layers))].sum(0)
                         for k in knockouts])  # (S, B): estimated change of the log-odds
    sweep = Sweep.estimated(run.outputs, base[None] + shift[..., None] * subspaces.compliant[None].to(base.dtype))
    single = [s for s, k in enumerate(knockouts) if suffix_start(run.masks, batch.roles, k, n_layers) >= length - 1]
    rerun_exact(loaded, run, batch, subspaces, knockouts, single, sweep, max_rows, lambda n: None)
    if method == "atp+verify":
        strength = torch.stack([nssd(base, after, subspaces).abs().mean() for after in sweep.logits])
        chosen = []
        for pathway in pathways:
            members = [s for s, k in enumerate(knockouts) if (k.source, k.target) == pathway and not sweep.exact[s]]
            chosen += sorted(members, key=lambda s: -float(strength[s]))[:verify_top]
        advance(sweep_steps(len(knockouts), len(pathways), method, verify_top) - 1 - len(chosen))
        rerun_exact(loaded, run, batch, subspaces, knockouts, chosen, sweep, max_rows, advance)
    return sweep
