"""One layer's knockouts and head scalings, applied inside a running trace (prefill or decode step).

Everything here is plain torch on tensors prepared before the trace, so it can run on a remote
NDIF server.
"""

from __future__ import annotations

from typing import Any

import nnsight
import torch

from ..interventions.edits import extend_roles, knockout_mask, role_mask, scale_heads
from ..interventions.plan import LayerPlan
from ..models.adapters import Adapter
from ..prompts.roles import ROLE_CODE


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
        mask = kwargs.get("attention_mask")
        query_length = kwargs["hidden_states"].shape[1]
        key_length = mask.shape[-1] if mask is not None else roles.shape[1] + (decode_step if not prefill else 0)
        key_roles = extend_roles(roles, key_length, generated_code)
        blocks = [([ROLE_CODE[r] for r in e.source], [ROLE_CODE[r] for r in e.target]) for e in step.knockouts]
        new_mask = knockout_mask(mask, key_roles, blocks, query_length, kwargs["hidden_states"].dtype)
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


def remote_kwargs(remote: bool | str) -> dict:
    """Keyword arguments of ``model.trace``/``generate`` for a remote (NDIF) run; ``"local"``
    simulates the round trip in-process. The ``anchors`` package travels by value."""
    if not remote:
        return {}
    import anchors

    nnsight.register(anchors)
    return {"remote": remote}
