"""Interventions grouped by the layer they act on: what one trace does at each layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

from ..errors import InputError
from ..prompts.roles import expand_role
from .specs import Intervention, Knockout


@dataclass(frozen=True)
class RoleEdges:
    """Attention edges to cut: from every ``source`` key to every ``target`` query (plain roles)."""

    source: tuple[str, ...]
    target: tuple[str, ...]


@dataclass(frozen=True)
class HeadScalePlan:
    """One layer's share of a :class:`~anchors.interventions.HeadScale`."""

    heads: tuple[int, ...]
    alpha: float
    role: tuple[str, ...]
    steps: Literal["prefill", "all"]


@dataclass
class LayerPlan:
    """What to do at one layer: attention edges to cut, and head scalings."""

    knockouts: list[RoleEdges] = field(default_factory=list)
    head_scales: list[HeadScalePlan] = field(default_factory=list)


def plan_layers(interventions: Sequence[Intervention], n_layers: int) -> dict[int, LayerPlan]:
    """Group interventions by the layer they act on (applied in layer order inside one trace)."""
    plan: dict[int, LayerPlan] = {}
    for item in interventions:
        if isinstance(item, Knockout):
            for layer in item.layers(n_layers):
                plan.setdefault(layer, LayerPlan()).knockouts.append(RoleEdges(expand_role(item.source), expand_role(item.target)))
            continue
        for layer in item.layers(n_layers):
            if not 0 <= layer < n_layers:
                raise InputError(f"head layer {layer} outside 0…{n_layers - 1}")
            heads = tuple(h for l, h in item.heads if l == layer)
            plan.setdefault(layer, LayerPlan()).head_scales.append(
                HeadScalePlan(heads, item.alpha, expand_role(item.role), item.steps))
    return dict(sorted(plan.items()))
