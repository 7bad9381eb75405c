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


def plan_layers(interventions: Sequence[Intervention], n_layers: int,
                attention_layers: Sequence[int] | None = None) -> dict[int, LayerPlan]:
    """Group interventions by the layer they act on (applied in layer order inside one trace).

    ``attention_layers`` are the layers with softmax self-attention (default: all). In a hybrid
    decoder a knockout window cuts only those of its layers (:func:`cut_layers` says which), and
    one whose layers are all linear attention, or a head scaling there, is refused."""
    softmax = set(range(n_layers) if attention_layers is None else attention_layers)
    plan: dict[int, LayerPlan] = {}
    for item in interventions:
        if isinstance(item, Knockout):
            for layer in cut_layers(item, n_layers, softmax):
                plan.setdefault(layer, LayerPlan()).knockouts.append(RoleEdges(expand_role(item.source), expand_role(item.target)))
            continue
        for layer in item.layers(n_layers):
            if not 0 <= layer < n_layers:
                raise InputError(f"head layer {layer} outside 0…{n_layers - 1}")
            if layer not in softmax:
                raise InputError(f"head layer {layer} has no softmax attention heads (a linear-attention layer); "
                                 f"softmax attention layers: {_spans(softmax)}")
            heads = tuple(h for l, h in item.heads if l == layer)
            plan.setdefault(layer, LayerPlan()).head_scales.append(
                HeadScalePlan(heads, item.alpha, expand_role(item.role), item.steps))
    return dict(sorted(plan.items()))


def cut_layers(knockout: Knockout, n_layers: int, attention_layers: set[int] | Sequence[int]) -> list[int]:
    """The layers of ``knockout``'s window whose attention it edits: those with softmax attention."""
    window, softmax = list(knockout.layers(n_layers)), set(attention_layers)
    cut = [layer for layer in window if layer in softmax]
    if not cut:
        raise InputError(f"knockout at layer {knockout.layer} (window {knockout.window}: layers {_spans(window)}) "
                         "covers only linear-attention layers, which have no attention mask to edit; softmax "
                         f"attention layers: {_spans(attention_layers)}")
    return cut


def _spans(layers: set[int] | Sequence[int]) -> str:
    """``0-2, 7, 11`` for a set of layer indices."""
    ordered, out = sorted(layers), []
    for layer in ordered:
        if out and layer == out[-1][1] + 1:
            out[-1][1] = layer
        else:
            out.append([layer, layer])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)
