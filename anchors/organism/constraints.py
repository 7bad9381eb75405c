"""Attention constraints for training: knockout-style cuts (source roles → target roles over a
range of layers) applied with the toolkit's own mask edit in plain forward pre-hooks, so a route
can be planted by training and then recovered by the analyses with no constraint at run time."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch

from ..interventions.edits import cut_edges
from ..interventions.plan import plan_layers
from ..interventions.specs import Knockout
from ..models.adapters import Adapter
from ..prompts.roles import ROLE_CODE, expand_role
from ..tracer.layer_edits import edge_codes


@dataclass(frozen=True)
class Constraint:
    """Cut attention from every ``source`` key to every ``target`` query (roles or groups joined by
    ``+``) in layers ``first`` … ``last`` inclusive: the same edit as a window-1 :class:`Knockout`
    at each of those layers."""

    source: str
    target: str
    first: int
    last: int

    def __post_init__(self) -> None:
        expand_role(tuple(self.source.split("+"))), expand_role(tuple(self.target.split("+")))

    def knockouts(self) -> list[Knockout]:
        source, target = tuple(self.source.split("+")), tuple(self.target.split("+"))
        return [Knockout(source, target, layer, 1) for layer in range(self.first, self.last + 1)]


@dataclass
class ConstraintSwitch:
    """What the hooks read at each forward: the batch's role codes, and whether to cut at all."""

    roles: torch.Tensor | None = None
    on: bool = True
    hooks: list[Any] = field(default_factory=list)


@contextmanager
def constrained(module: torch.nn.Module, adapter: Adapter, constraints: Sequence[Constraint]) -> Iterator[ConstraintSwitch]:
    """Forward pre-hooks on the attention modules of ``module`` (a plain transformers model) that
    edit the mask each layer receives while ``switch.on``; set ``switch.roles`` for every batch."""
    switch = ConstraintSwitch()
    plan = plan_layers([k for c in constraints for k in c.knockouts()], adapter.shape.n_layers)
    for layer, step in plan.items():
        edges = edge_codes(step)

        def hook(_module: Any, args: tuple, kwargs: dict, edges: list = edges) -> tuple[tuple, dict] | None:
            if not switch.on:
                return None
            hidden = kwargs["hidden_states"]
            mask = cut_edges(kwargs.get("attention_mask"), switch.roles, edges, hidden.shape[1], hidden.dtype,
                             generated_code=ROLE_CODE["generated"])
            return args, {**kwargs, "attention_mask": mask}

        switch.hooks.append(adapter.attention(module, layer).register_forward_pre_hook(hook, with_kwargs=True))
    try:
        yield switch
    finally:
        for handle in switch.hooks:
            handle.remove()


def anchored_route(n_layers: int) -> tuple[Constraint, ...]:
    """The paper's route, made the only one: the answer position attends only to itself, and in
    the upper half of the layers to the instruction tokens; instruction tokens attend to the cues
    (visual, context) only in the lower half."""
    half = n_layers // 2
    return (
        Constraint("template+system+visual+context+question", "generated", 0, n_layers - 1),
        Constraint("instruction", "generated", 0, half - 1),
        Constraint("visual+context", "instruction", half, n_layers - 1),
    )
