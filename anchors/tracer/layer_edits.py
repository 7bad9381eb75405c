"""One layer's planned knockouts and head scalings, applied inside a running trace (prefill or
decode step) through the public :class:`~anchors.tracer.model_view.ModelView` edits, so the package's
analyses and a user's own trace share one implementation.

Everything here is plain torch on tensors prepared before the trace, so it can run on a remote
NDIF server.
"""

from __future__ import annotations

import torch

from ..interventions.plan import LayerPlan
from .encode import EncodedBatch
from .model_view import ModelView
from .role_edits import edge_role_codes


def edge_codes(step: LayerPlan) -> list[tuple[list[int], list[int]]]:
    """A layer plan's knockouts as (source codes, target codes) for :func:`cut_edges`."""
    return edge_role_codes([(e.source, e.target) for e in step.knockouts])


def apply_layer(view: ModelView, batch: EncodedBatch, index: int, step: LayerPlan | None, *, prefill: bool,
                read_z: bool = False) -> torch.Tensor | None:
    """Apply one layer's plan (a head scaling whose ``steps`` is ``"prefill"`` skips decode steps);
    returns the (possibly edited) o_proj input when ``read_z`` or when heads were scaled."""
    if step and step.knockouts:
        view.cut(batch, index, [(e.source, e.target) for e in step.knockouts])
    scales = [s for s in (step.head_scales if step else []) if prefill or s.steps == "all"]
    if not scales and not read_z:
        return None
    if not scales:
        return view.adapter.out_proj(view.model, index).input
    for scale in scales:
        z = view.scale_heads(batch, index, scale.heads, scale.alpha, scale.role)
    return z
