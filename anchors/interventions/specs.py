"""Interventions as small declarative, serialisable configs (pyvene-style)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import ClassVar, Literal

from ..errors import InputError
from ..prompts.roles import expand_role


def _window(layer: int, window: int, n_layers: int) -> range:
    """Exactly ``window`` layers around ``layer`` (clipped at the model's ends): ``window//2`` before
    it and ``(window-1)//2`` after, so an even window takes its extra layer on the earlier side."""
    return range(max(0, layer - window // 2), min(n_layers - 1, layer + (window - 1) // 2) + 1)


@dataclass(frozen=True)
class Knockout:
    """Block attention from every ``source`` token (key) to every ``target`` token (query) in all
    heads of layers ``layer - window//2 … layer + (window-1)//2`` (clipped; ``window`` layers, an
    even window's extra one on the earlier side), Eq 3.

    >>> list(anchors.Knockout("visual", "instruction", layer=2, window=3).layers(6))
    [1, 2, 3]
"""

    source: str | tuple[str, ...]
    target: str | tuple[str, ...]
    layer: int
    window: int = 9
    kind: ClassVar[str] = "knockout"

    def __post_init__(self) -> None:
        expand_role(self.source), expand_role(self.target)
        if self.window < 1:
            raise InputError(f"knockout window must be ≥ 1, got {self.window}")

    def layers(self, n_layers: int) -> range:
        if not 0 <= self.layer < n_layers:
            raise InputError(f"knockout layer {self.layer} outside 0…{n_layers - 1}")
        return _window(self.layer, self.window, n_layers)


@dataclass(frozen=True)
class HeadScale:
    """Multiply the chosen heads' outputs (their slices of the ``o_proj`` input) by ``alpha`` at the
    positions of ``role``: alpha=0 blocks, alpha>1 amplifies (§4.2). ``steps`` selects the prefill
    pass only or every generation step.

    >>> block = anchors.HeadScale(heads=((3, 1), (4, 0)), alpha=0.0, role="instruction")
    >>> block.layers(6)
    [3, 4]"""

    heads: tuple[tuple[int, int], ...]
    alpha: float = 0.0
    role: str | tuple[str, ...] = "instruction"
    steps: Literal["prefill", "all"] = "prefill"
    kind: ClassVar[str] = "head_scale"

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple((int(l), int(h)) for l, h in self.heads))
        expand_role(self.role)
        if self.steps not in ("prefill", "all"):
            raise InputError(f"steps must be 'prefill' or 'all', got {self.steps!r}")

    def layers(self, n_layers: int) -> list[int]:
        return sorted({layer for layer, _ in self.heads})


# How a sweep of many knockouts is computed (exact: reuse, naive; estimated: atp, atp+verify).
EXACT_KNOCKOUT_METHODS: tuple[str, ...] = ("reuse", "naive")
KNOCKOUT_METHODS: tuple[str, ...] = EXACT_KNOCKOUT_METHODS + ("atp", "atp+verify")
# The exact methods run on a remote server, each batch one request whose reply holds readouts only;
# ``atp``'s backward pass cannot (check_remote_method says why).
REMOTE_KNOCKOUT_METHODS: tuple[str, ...] = ("naive", "reuse")


def check_remote_method(method: str) -> None:
    """Refuse a knockout method that cannot run on a remote (NDIF) server."""
    if method not in REMOTE_KNOCKOUT_METHODS:
        raise InputError(f"--method {method} cannot run remotely: its backward pass reads gradients at every layer, "
                         "which a sandboxed NDIF request cannot (ndif runs the backward after the forward, past "
                         f"the block's reads); use --method {' or '.join(REMOTE_KNOCKOUT_METHODS)} with --remote")
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
