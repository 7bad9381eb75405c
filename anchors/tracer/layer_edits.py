"""One layer's knockouts and head scalings, applied inside a running trace (prefill or decode step).

Everything here is plain torch on tensors prepared before the trace, so it can run on a remote
NDIF server.
"""

from __future__ import annotations

from typing import Any

import nnsight
import torch

from ..interventions.edits import cut_edges, role_mask, scale_heads
from ..interventions.plan import LayerPlan
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.roles import ROLE_CODE


def edge_codes(step: LayerPlan) -> list[tuple[list[int], list[int]]]:
    """A layer plan's knockouts as (source codes, target codes) for :func:`cut_edges`."""
    return [([ROLE_CODE[r] for r in e.source], [ROLE_CODE[r] for r in e.target]) for e in step.knockouts]


def apply_layer(
    model: Any, adapter: Adapter, index: int, step: LayerPlan | None, roles: torch.Tensor, *, prefill: bool,
    read_z: bool = False, decode_step: int = 0,
) -> torch.Tensor | None:
    """Apply one layer's plan; returns the (possibly edited) o_proj input when ``read_z`` or when
    heads were scaled."""
    generated_code = ROLE_CODE["generated"]
    if step and step.knockouts:
        attention = adapter.attention(model, index)
        args, kwargs = attention.inputs
        hidden = kwargs["hidden_states"]
        new_mask = cut_edges(kwargs.get("attention_mask"), roles, edge_codes(step), hidden.shape[1], hidden.dtype,
                             decode_step=0 if prefill else decode_step, generated_code=generated_code)
        attention.inputs = (args, {**kwargs, "attention_mask": new_mask})
    scales = [s for s in (step.head_scales if step else []) if prefill or s.steps == "all"]
    if not scales and not read_z:
        return None
    out_proj = adapter.out_proj(model, index)
    z = out_proj.input
    if scales:
        query_roles = roles if prefill else torch.full(z.shape[:2], generated_code, dtype=roles.dtype, device=roles.device)
        for scale in scales:
            positions = role_mask(query_roles, [ROLE_CODE[r] for r in scale.role])
            z = scale_heads(z, list(scale.heads), scale.alpha, positions, adapter.shape.head_dim)
        out_proj.input = z
    return z


def remote_kwargs(loaded: LoadedModel, remote: bool | str | None = None) -> dict:
    """Keyword arguments of ``model.trace``/``generate`` for a remote (NDIF) run: ``remote`` if
    given, else as the model was loaded (``loaded.remote``); ``"local"`` simulates the round trip
    in-process. The ``anchors`` package travels by value."""
    remote = loaded.remote if remote is None else remote
    if not remote:
        return {}
    import anchors

    nnsight.register(anchors)
    return {"remote": remote}
