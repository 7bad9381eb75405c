"""One nnsight trace per batch: apply interventions in layer order and read small tensors out.

Everything inside the ``with model.trace(...)`` block is plain torch on real tensors (nnsight ≥0.5
runs the block alongside the forward), so it can run on a remote NDIF server; dictionaries,
roles and positions are turned into tensors before the trace, and labelled arrays are built
after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Sequence

import nnsight
import torch

from ..interventions.plan import plan_layers
from ..interventions.specs import Intervention
from ..models.loading import LoadedModel
from ..readouts.lens import frozen_norm_logits, head_contributions, lens_logits
from ..readouts.metrics import full_kl, subspace_mass
from ..readouts.subspaces import Subspaces, subspace_logits
from .encode import EncodedBatch
from .layer_edits import apply_layer
from .model_view import ModelView
from .remote import remote_kwargs
from .positions import gather_at, positions

SITES: tuple[str, ...] = ("pre", "mid", "post")


@dataclass
class TraceOutputs:
    """What one trace returns (CPU tensors). B = batch, U = union of the batch's dictionary ids,
    L = layers, S = 3 sites (``pre``: layer input, ``mid``: after attention, ``post``: layer
    output), P = readout positions (each row's positions of the readout role, right-padded by
    repeating its last one), H = heads; the last axis of size 2 is (compliant, competing). Floating
    point outputs are float32 whatever the model's dtype.

    - ``answer_logits`` (B, U): final logits at the answer position on the dictionary ids.
    - ``top_token`` (B,): greedy next token at the answer position.
    - ``subspace_mass`` (B,): the next-token probability (over the whole vocabulary) of the row's
      decision subspace, compliant ∪ competing ids.
    - ``full_kl`` (B,), with ``reference_log_probs``: KL(reference ‖ this run) over the whole vocabulary.
    - ``log_probs`` (B, V), with ``keep_log_probs``: the next-token log-probabilities.
    - ``valid`` (B, P): which readout positions are real (not repeats).
    - ``readout`` (B, L, S, P, 2), with ``lens``: subspace logits (Eq 1) of the logit lens at
      every readout position and site.
    - ``readout_generated`` (B, L, S, 2), with ``lens``: the same at the answer position.
    - ``head_readout`` (B, L, P, H, 2), with ``heads``: subspace logits of the lens applied to the
      layer input plus one head's update (Eq 9).
    - ``head_linear`` (B, L, H, U), with ``heads``: each head's update through the final norm with
      its scale frozen at the layer input, on the union's unembedding rows, averaged over the valid
      readout positions; ``attn_linear`` (B, L, U): the same for the whole attention update (the sum
      of the heads' plus any output bias). Both head fields are NaN at a hybrid decoder's
      linear-attention layers, which have no softmax heads.
    """

    answer_logits: torch.Tensor
    top_token: torch.Tensor
    valid: torch.Tensor
    readout: torch.Tensor | None = None
    readout_generated: torch.Tensor | None = None
    head_readout: torch.Tensor | None = None
    head_linear: torch.Tensor | None = None
    attn_linear: torch.Tensor | None = None
    subspace_mass: torch.Tensor | None = None
    full_kl: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None


#: bytes a saved tensor costs on the wire beyond its values (torch.save's record), measured on the
#: local NDIF stack's replies
SAVED_TENSOR_OVERHEAD = 1200


def saved_bytes(batch: int, union: int, positions: int, n_layers: int, n_heads: int, *, lens: bool = False,
                heads: bool = False, full_kl: bool = False) -> int:
    """Bytes a remote :func:`trace_batch` brings back: the :class:`TraceOutputs` fields it saves
    (float32; ``top_token`` int64), each with :data:`SAVED_TENSOR_OVERHEAD`."""
    shapes = [(batch, union), (batch, 2), (batch,)] + ([(batch,)] if full_kl else [])
    if lens:
        shapes += [(batch, n_layers, 3, positions, 2), (batch, n_layers, 3, 2)]
    if heads:
        shapes += [(batch, n_layers, positions, n_heads, 2), (batch, n_layers, n_heads, union), (batch, n_layers, union)]
    return sum(4 * prod(shape) + SAVED_TENSOR_OVERHEAD for shape in shapes)


def to_host(tensor: torch.Tensor) -> torch.Tensor:
    """A trace output on the CPU; floating point as float32 whatever the model's dtype (bf16
    arrays have no numpy or NetCDF form)."""
    tensor = tensor.detach().cpu()
    return tensor.float() if tensor.is_floating_point() else tensor


def per_head_chunk(length: int, n_heads: int) -> int:
    """Readout positions whose per-head residuals (B, positions, heads, hidden) are built at once:
    at most one residual stream's worth (B, length, hidden), so the per-head readout never holds
    more than a hidden state of the forward pass does."""
    return max(1, length // n_heads)


def trace_batch(
    loaded: LoadedModel,
    batch: EncodedBatch,
    subspaces: Subspaces,
    interventions: Sequence[Intervention] = (),
    *,
    lens: bool = False,
    heads: bool = False,
    readout_role: str | tuple[str, ...] = "instruction",
    remote: bool | str | None = None,
    reference_log_probs: torch.Tensor | None = None,
    keep_log_probs: bool = False,
) -> TraceOutputs:
    """Run one forward pass with ``interventions`` and return :class:`TraceOutputs`.

    ``remote=True`` sends the trace to an NDIF server (``"local"`` simulates the round trip
    in-process; None: as the model was loaded, ``loaded.remote``); the ``anchors`` package is
    registered so its functions travel by value.

    >>> from anchors.readouts import Subspaces
    >>> space = Subspaces.from_ids(batch.sample_ids, [[5]] * 2, [[6]] * 2)  # compliant, competing ids
    >>> out = anchors.trace_batch(view.loaded, batch, space, [anchors.Knockout("cues", "instruction", 1, 3)], lens=True)
    >>> tuple(out.answer_logits.shape), tuple(out.readout.shape[:3])
    ((2, 2), (2, 6, 3))
    """
    model, adapter, view = loaded.model, loaded.adapter, ModelView(loaded)
    device = loaded.device
    softmax = adapter.attention_layers(model)
    plan = plan_layers(list(interventions), adapter.shape.n_layers, softmax)
    roles = batch.roles.to(device)
    space = subspaces.to(device)
    union = space.union
    index, valid = positions(batch, readout_role)
    index = index.to(device)
    weights = valid.to(device).float()[..., None] / valid.sum(1).to(device).float()[:, None, None]  # (B, P, 1)
    last = torch.full((roles.shape[0], 1), roles.shape[1] - 1, dtype=torch.long, device=device)
    head_chunk = per_head_chunk(roles.shape[1], adapter.shape.n_heads)

    def read(hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        at_readout = subspace_logits(lens_logits(adapter, model, gather_at(hidden, index), union), space)
        at_answer = subspace_logits(lens_logits(adapter, model, gather_at(hidden, last), union), space)[:, 0]
        return at_readout, at_answer

    inputs = batch.inputs.to(device)
    reference = reference_log_probs.to(device) if reference_log_probs is not None else None
    # logits_to_keep=1: the model unembeds the answer position only, never (batch, seq, vocab)
    with torch.no_grad(), model.trace(inputs, logits_to_keep=1, **remote_kwargs(loaded, remote)):
        readout, readout_generated, head_readout, head_linear, attn_linear = [], [], [], [], []
        for i in range(adapter.shape.n_layers):
            if lens or heads:
                pre = view.read("resid_pre", i)
            z = apply_layer(view, batch, i, plan.get(i), prefill=True, read_z=heads and i in softmax)
            if lens or heads:
                mid = view.read("resid_mid", i, resid_pre=pre)
            if heads and i not in softmax:  # a linear-attention layer: no softmax heads to read
                head_readout.append(torch.full((*index.shape, adapter.shape.n_heads, 2), float("nan"), device=device))
                head_linear.append(torch.full((index.shape[0], adapter.shape.n_heads, len(union)), float("nan"),
                                              device=device))
            elif heads:
                readouts, linear = [], 0.0
                for part, weight in zip(index.split(head_chunk, dim=1), weights.split(head_chunk, dim=1)):
                    base, shares = gather_at(pre, part), head_contributions(adapter, model, i, gather_at(z, part))
                    readouts.append(subspace_logits(lens_logits(adapter, model, base[:, :, None] + shares, union), space))
                    linear = linear + (frozen_norm_logits(adapter, model, base[:, :, None], shares, union)
                                       * weight[..., None]).sum(1)
                head_readout.append(torch.cat(readouts, dim=1))
                head_linear.append(linear)
            if heads:
                update = gather_at(mid, index) - gather_at(pre, index)
                attn_linear.append((frozen_norm_logits(adapter, model, gather_at(pre, index), update, union) * weights).sum(1))
            if lens:
                per_site = [read(h) for h in (pre, mid, view.read("resid_post", i))]
                readout.append(torch.stack([r for r, _ in per_site], dim=1))
                readout_generated.append(torch.stack([g for _, g in per_site], dim=1))
        final = model.output.logits[:, -1]
        log_probs = final.float().log_softmax(-1)
        result = {"answer_logits": final[:, union], "top_token": final.argmax(-1),
                  "subspace_mass": subspace_mass(log_probs[:, union], space)}
        if reference is not None:
            result["full_kl"] = full_kl(reference, log_probs)
        if keep_log_probs:
            result["log_probs"] = log_probs
        if lens:
            result["readout"] = torch.stack(readout, dim=1)
            result["readout_generated"] = torch.stack(readout_generated, dim=1)
        if heads:
            result["head_readout"] = torch.stack(head_readout, dim=1)
            result["head_linear"] = torch.stack(head_linear, dim=1)
            result["attn_linear"] = torch.stack(attn_linear, dim=1)
        result = nnsight.save(result)
    return TraceOutputs(valid=valid, **{k: to_host(v) for k, v in result.items()})
