"""Exact knockout sweeps that reuse the clean run: start each knockout at its window's first layer,
and recompute only the positions the cut can change.

A knockout in a window starting at layer f leaves everything before layer f as in the clean run,
and (under a causal mask) every position before the first query it edits unchanged at every layer.
So one clean trace per batch caches each decoder layer's input and its keys and values; a setting
then runs layers f… on the suffix of positions from t0 (the first edited query), attending to the
clean keys and values of the prefix. The result is the naive knockout's, up to float rounding.

Several settings that share (f, t0) are stacked along the batch dimension (each row with its own
mask edit), as many as ``max_rows`` allows.

Layer inputs are sliced by name; the table below holds which axis of each keyword argument of a
transformers decoder layer is the sequence and which is the batch. An argument it does not know
stops the sweep with an error that names it (``--method naive`` still works).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import nnsight
import torch
from transformers import DynamicCache

from ..errors import AnchorsError
from ..interventions.edits import knockout_mask, role_mask
from ..interventions.specs import Knockout
from ..models.loading import LoadedModel
from ..prompts.roles import ROLE_CODE, expand_role
from ..readouts.lens import lens_logits
from ..readouts.metrics import full_kl, subspace_mass
from ..readouts.subspaces import Subspaces
from .encode import EncodedBatch
from .trace import TraceOutputs, to_host

# keyword argument of a decoder layer → (sequence axis, batch axis); None: not batched
LAYER_KWARGS: dict[str, tuple[int, int | None]] = {
    "position_embeddings": (-2, -3),  # (cos, sin): (B, T, d) or (3, B, T, d) for multimodal RoPE
    "position_ids": (-1, -2),  # (B, T) or (3, B, T)
    "cache_position": (-1, None),  # (T,)
}
PASSED_THROUGH = frozenset({"attention_mask", "past_key_values", "use_cache", "output_attentions"})


class ReuseError(AnchorsError):
    """The model's decoder layers take an input the prefix-reuse sweep cannot slice."""


@dataclass
class CleanRun:
    """What the clean trace leaves for the reruns (tensors on the model's device).

    - ``hidden[f]`` (B, T, D): input of decoder layer f, for every start layer asked for.
    - ``keys[i]``, ``values[i]`` (B, KV heads, T, d): the keys and values layer i attended to.
    - ``masks[i]``: the attention mask layer i received ((B|1, 1, T, T) float or bool, or None).
    - ``kwargs[i]``: layer i's other keyword tensors (position embeddings, position ids).
    - ``between[i]`` (B, T, D) or None: what the decoder adds to layer i's output before layer i+1
      (Qwen3-VL's DeepStack vision features at the image positions; None where nothing is added).
      It depends on the image only, so a rerun adds the clean run's.
    """

    outputs: TraceOutputs
    hidden: dict[int, torch.Tensor]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    masks: list[torch.Tensor | None]
    kwargs: list[dict[str, Any]]
    between: dict[int, torch.Tensor]


def prefix_cache(clean: CleanRun, layer: int, rows: int, t0: int) -> DynamicCache:
    """The cache decoder layer ``layer`` of a rerun sees: the clean run's keys and values of
    positions ``…t0`` (each sample's repeated ``rows`` times), to which the layer appends the
    suffix's own. A plain transformers cache, so it travels to a remote model's host and back."""
    def prefix(x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :t0].repeat(rows, 1, 1, 1)

    return DynamicCache([(None, None)] * layer + [(prefix(clean.keys[layer]), prefix(clean.values[layer]))])


def capture_layer(model: Any, adapter: Any, index: int, start_layers: Sequence[int], saved: dict[str, Any]) -> None:
    """Inside a running trace, at decoder layer ``index`` (from the earliest start layer on): keep its
    keyword inputs, its hidden input (detached) if it is a start layer, and what was added to the
    previous layer's output (:func:`capture_output`) if anything."""
    if index < min(start_layers):
        return
    layer = adapter.layer(model, index)
    hidden = layer.input
    if index in start_layers:
        saved["hidden"][index] = hidden.detach()
    if "previous" in saved:
        added = hidden - saved.pop("previous")
        if bool(added.abs().amax() > 0):
            saved["between"][index - 1] = added.detach()
    kwargs = layer.inputs[1]
    saved["masks"].append(kwargs.get("attention_mask"))
    saved["kwargs"].append({k: v for k, v in kwargs.items() if k not in PASSED_THROUGH})


def capture_output(model: Any, adapter: Any, index: int, start_layers: Sequence[int], saved: dict[str, Any]) -> None:
    """Inside a running trace, after everything read within decoder layer ``index``: keep its output
    until the next layer's input shows what the decoder added in between (:class:`CleanRun`)."""
    if index >= min(start_layers):
        output = adapter.layer(model, index).output
        saved["previous"] = output[0] if isinstance(output, tuple) else output


def captured(saved: dict[str, Any], answer: dict[str, torch.Tensor], adapter: Any) -> CleanRun:
    """The :class:`CleanRun` from what :func:`capture_layer` saved, the trace's key/value cache
    (``saved["cache"]``) and the ``answer``'s readouts (:class:`TraceOutputs` fields)."""
    for name in {k for kw in saved["kwargs"] for k, v in kw.items() if isinstance(v, torch.Tensor)}:
        if name not in LAYER_KWARGS:
            raise ReuseError(f"decoder layers of {type(adapter).__name__} take {name!r}, which prefix reuse cannot "
                             "slice; use --method naive")
    pad = [None] * (adapter.shape.n_layers - len(saved["masks"]))
    cache = saved["cache"]
    return CleanRun(TraceOutputs(valid=torch.ones(0), **answer), saved["hidden"],
                    [layer.keys.detach() for layer in cache.layers], [layer.values.detach() for layer in cache.layers],
                    pad + saved["masks"], pad + saved["kwargs"], saved["between"])


def clean_run(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, start_layers: Sequence[int]) -> CleanRun:
    """The clean trace: answer logits as :func:`trace_batch` returns them, plus every layer's
    inputs, keys and values from the earliest start layer on."""
    with torch.no_grad(), loaded.model.trace(batch.inputs.to(loaded.device), **clean_trace_options()):
        saved = nnsight.save(clean_readouts(loaded.model, loaded.adapter, subspaces.to(loaded.device), start_layers))
    return captured(saved, {k: to_host(v) for k, v in saved["answer"].items()}, loaded.adapter)


def clean_trace_options() -> dict[str, Any]:
    """Keyword arguments of the clean trace: the answer position's logits only, and a fresh cache
    that keeps every layer's keys and values."""
    return {"logits_to_keep": 1, "use_cache": True, "past_key_values": DynamicCache()}


def clean_readouts(model: Any, adapter: Any, space: Subspaces, start_layers: Sequence[int]) -> dict[str, Any]:
    """Inside a running clean trace (opened with :func:`clean_trace_options`): what :func:`captured`
    needs, the answer's readouts under ``"answer"`` and the filled cache under ``"cache"``."""
    saved: dict[str, Any] = {"hidden": {}, "masks": [], "kwargs": [], "between": {}}
    for i in range(adapter.shape.n_layers):
        capture_layer(model, adapter, i, start_layers, saved)
        capture_output(model, adapter, i, start_layers, saved)
    output = model.output
    final = output.logits[:, -1]
    log_probs = final.float().log_softmax(-1)
    saved["answer"] = {"answer_logits": final[:, space.union], "top_token": final.argmax(-1), "log_probs": log_probs,
                       "subspace_mass": subspace_mass(log_probs[:, space.union], space)}
    saved["cache"] = output.past_key_values
    return saved


def first_query(roles: torch.Tensor, knockout: Knockout) -> int:
    """The first position (over the batch) whose query the knockout edits; the length if none."""
    hits = torch.nonzero(role_mask(roles, [ROLE_CODE[r] for r in expand_role(knockout.target)]).any(0)).flatten()
    return int(hits[0]) if len(hits) else roles.shape[1]


def causal_prefix(masks: Sequence[torch.Tensor | None], t0: int) -> int:
    """The largest t ≤ t0 such that no query before t attends to a key at or after t, in any of
    ``masks`` (bidirectional image blocks, as in Gemma 3, can move it earlier)."""
    limit = t0
    for mask in masks:
        if mask is None:
            continue
        allowed = mask if mask.dtype == torch.bool else mask > torch.finfo(mask.dtype).min / 2
        keys = torch.arange(allowed.shape[-1], device=allowed.device)
        last_key = torch.where(allowed, keys, -1).amax(dim=(0, 1, 3)) if allowed.dim() == 4 else None
        reach = torch.cummax(last_key, 0).values  # furthest key any query ≤ q attends to
        ok = torch.nonzero(reach[: limit] < torch.arange(1, limit + 1, device=reach.device)).flatten()
        limit = min(limit, 1 + int(ok[-1]) if len(ok) else 0)
    return limit


def _slice(value: Any, axes: tuple[int, int | None], t0: int, rows: int) -> Any:
    """Positions ``t0…`` of a layer input, its batch repeated ``rows`` times (unless broadcast)."""
    if isinstance(value, (tuple, list)):
        return type(value)(_slice(v, axes, t0, rows) for v in value)
    if not isinstance(value, torch.Tensor):
        return value
    sequence, batch = axes
    value = value.narrow(sequence, t0, value.shape[sequence] - t0)
    if batch is None or rows == 1 or value.shape[batch] == 1:
        return value
    repeats = [1] * value.dim()
    repeats[batch] = rows
    return value.repeat(*repeats)


def rerun(adapter: Any, root: Any, clean: CleanRun, roles: torch.Tensor, settings: Sequence[Knockout], start: int,
          t0: int, subspaces: Subspaces) -> dict[str, torch.Tensor]:
    """What ``settings`` (knockouts whose windows start at or after ``start``) do to the answer, from
    the clean run's layer ``start`` input, on positions ``t0…``: ``answer_logits`` (R, B, U) on the
    dictionary ids, ``top_token``, ``subspace_mass`` and ``full_kl`` against the clean run (R, B).
    ``root`` is the plain module, or (on a remote model, inside its trace) the nnsight model, whose
    layers are then called on the server."""
    n_layers, rows = adapter.shape.n_layers, len(settings)
    batch, length = roles.shape
    queries = length - t0
    codes = [([ROLE_CODE[r] for r in expand_role(k.source)], [ROLE_CODE[r] for r in expand_role(k.target)])
             for k in settings]
    windows = [set(k.layers(n_layers)) for k in settings]
    hidden = clean.hidden[start][:, t0:].repeat(rows, 1, 1)
    for i in range(start, n_layers):
        mask = clean.masks[i]
        mask = None if mask is None else mask[..., t0:, :]
        edited = [knockout_mask(mask, roles, [codes[s]] if i in windows[s] else [], queries, hidden.dtype)
                  for s in range(rows)]
        kwargs = {k: _slice(v, LAYER_KWARGS[k], t0, rows) if k in LAYER_KWARGS else v for k, v in clean.kwargs[i].items()}
        out = adapter.layer(root, i)(hidden, attention_mask=torch.cat(edited),
                                     past_key_values=prefix_cache(clean, i, rows, t0), use_cache=True, **kwargs)
        hidden = out[0] if isinstance(out, tuple) else out
        if i in clean.between:
            hidden = hidden + clean.between[i][:, t0:].repeat(rows, 1, 1)
    logits = lens_logits(adapter, root, hidden[:, -1])
    log_probs = logits.float().log_softmax(-1)
    space = Subspaces(subspaces.union, subspaces.compliant.repeat(rows, 1), subspaces.competing.repeat(rows, 1))
    reference = clean.outputs.log_probs.to(log_probs.device).repeat(rows, 1)
    result = {"answer_logits": logits[:, subspaces.union], "top_token": logits.argmax(-1),
              "subspace_mass": subspace_mass(log_probs[:, subspaces.union], space), "full_kl": full_kl(reference, log_probs)}
    return {k: v.view(rows, batch, *v.shape[1:]) for k, v in result.items()}
