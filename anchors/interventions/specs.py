"""Interventions as small declarative, serialisable configs (pyvene-style)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from ..tracer.roles import ROLES

# Role groups usable wherever a role is expected.
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction_semantic", "instruction_format"),
    "cues": ("visual", "context"),
    "prompt": ("template", "system", "visual", "context", "question", "instruction_semantic", "instruction_format"),
    "all": ("template", "system", "visual", "context", "question", "instruction_semantic", "instruction_format", "generated"),
}


def expand_role(role: str | tuple[str, ...]) -> tuple[str, ...]:
    """A role name, a group name (``ROLE_GROUPS``), or a tuple of them, as plain role names."""
    names = (role,) if isinstance(role, str) else tuple(role)
    out: list[str] = []
    for name in names:
        if name in ROLE_GROUPS:
            out.extend(ROLE_GROUPS[name])
        elif name in ROLES and name != "pad":
            out.append(name)
        else:
            raise ValueError(f"unknown role {name!r}; roles: {ROLES[1:]}, groups: {tuple(ROLE_GROUPS)}")
    return tuple(dict.fromkeys(out))


def _window(layer: int, window: int, n_layers: int) -> range:
    half = window // 2
    return range(max(0, layer - half), min(n_layers - 1, layer + half) + 1)


@dataclass(frozen=True)
class Knockout:
    """Block attention from every ``source`` token (key) to every ``target`` token (query) in all
    heads of layers ``layer - window//2 … layer + window//2`` (clipped), Eq 3."""

    source: str | tuple[str, ...]
    target: str | tuple[str, ...]
    layer: int
    window: int = 9
    kind: ClassVar[str] = "knockout"

    def __post_init__(self) -> None:
        expand_role(self.source), expand_role(self.target)
        if self.window < 1:
            raise ValueError(f"knockout window must be ≥ 1, got {self.window}")

    def layers(self, n_layers: int) -> range:
        if not 0 <= self.layer < n_layers:
            raise ValueError(f"knockout layer {self.layer} outside 0…{n_layers - 1}")
        return _window(self.layer, self.window, n_layers)


@dataclass(frozen=True)
class HeadScale:
    """Multiply the chosen heads' outputs (their slices of the ``o_proj`` input) by ``alpha`` at the
    positions of ``role``: alpha=0 blocks, alpha>1 amplifies (§4.2). ``steps`` selects the prefill
    pass only or every generation step."""

    heads: tuple[tuple[int, int], ...]
    alpha: float = 0.0
    role: str | tuple[str, ...] = "instruction"
    steps: Literal["prefill", "all"] = "prefill"
    kind: ClassVar[str] = "head_scale"

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple((int(l), int(h)) for l, h in self.heads))
        expand_role(self.role)
        if self.steps not in ("prefill", "all"):
            raise ValueError(f"steps must be 'prefill' or 'all', got {self.steps!r}")

    def layers(self, n_layers: int) -> list[int]:
        return sorted({layer for layer, _ in self.heads})


Intervention = Knockout | HeadScale
_KINDS: dict[str, type] = {"knockout": Knockout, "head_scale": HeadScale}


def to_json(interventions: list[Intervention] | tuple[Intervention, ...]) -> str:
    return json.dumps([{"kind": i.kind, **asdict(i)} for i in interventions])


def from_json(text: str) -> list[Intervention]:
    out: list[Intervention] = []
    for item in json.loads(text):
        item = dict(item)
        cls = _KINDS[item.pop("kind")]
        for key in ("source", "target", "role"):
            if isinstance(item.get(key), list):
                item[key] = tuple(item[key])
        if "heads" in item:
            item["heads"] = tuple(tuple(h) for h in item["heads"])
        out.append(cls(**item))
    return out


@dataclass
class LayerPlan:
    """What to do at one layer: role masks whose edges to cut, and head scalings."""

    knockouts: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    head_scales: list[tuple[list[int], float, tuple[str, ...], str]] = field(default_factory=list)


def plan_layers(interventions: list[Intervention] | tuple[Intervention, ...], n_layers: int) -> dict[int, LayerPlan]:
    """Group interventions by the layer they act on (applied in layer order inside one trace)."""
    plan: dict[int, LayerPlan] = {}
    for item in interventions:
        if isinstance(item, Knockout):
            for layer in item.layers(n_layers):
                plan.setdefault(layer, LayerPlan()).knockouts.append((expand_role(item.source), expand_role(item.target)))
        else:
            for layer in item.layers(n_layers):
                if not 0 <= layer < n_layers:
                    raise ValueError(f"head layer {layer} outside 0…{n_layers - 1}")
                heads = [h for l, h in item.heads if l == layer]
                plan.setdefault(layer, LayerPlan()).head_scales.append((heads, item.alpha, expand_role(item.role), item.steps))
    return dict(sorted(plan.items()))


def describe(item: Any) -> str:
    return json.dumps({"kind": item.kind, **asdict(item)})
