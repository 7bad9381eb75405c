"""The role-aware edits of :class:`~anchors.tracer.model_view.ModelView`: attention knockout between
token roles (Eq 3) and head scaling at roles (Eq 10), on the live forward pass of a trace or of each
step of a generation. Plain torch on the batch's role codes, so they also run on a remote server.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..interventions.edits import cut_edges, role_mask, scale_heads
from ..prompts.roles import ROLE_CODE, expand_role
from .encode import EncodedBatch


def edge_role_codes(edges: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[tuple[list[int], list[int]]]:
    """(source roles, target roles) edges as the role codes :func:`cut_edges` takes."""
    return [([ROLE_CODE[r] for r in source], [ROLE_CODE[r] for r in target]) for source, target in edges]


class RoleEdits:
    """Edits for a view with ``model`` (nnsight) and ``adapter``; the examples share ``view`` and
    ``batch`` as :mod:`anchors.tracer.model_view` makes them."""

    model: Any
    adapter: Any

    def knockout(self, batch: EncodedBatch, layer: int, source: str | tuple[str, ...],
                 target: str | tuple[str, ...]) -> None:
        """Cut attention from every ``source`` key to every ``target`` query at ``layer`` (the
        paper's knockout, Eq 3: the edges get the mask's minimum). In a decode step the query is
        ``generated`` and every earlier generated token is a ``generated`` key.

        >>> with view.trace(batch):
        ...     for layer in (0, 1):
        ...         view.knockout(batch, layer, source="visual", target="instruction")"""
        self.cut(batch, layer, [(expand_role(source), expand_role(target))])

    def cut(self, batch: EncodedBatch, layer: int, edges: Sequence[tuple[tuple[str, ...], tuple[str, ...]]]) -> None:
        """:meth:`knockout` of several (source roles, target roles) edges at once (one new mask).

        >>> with view.trace(batch):
        ...     view.cut(batch, 0, [(("visual",), ("question",)), (("context",), ("instruction_semantic",))])"""
        attention = self.adapter.attention(self.model, layer)
        args, kwargs = attention.inputs
        hidden, mask = kwargs["hidden_states"], kwargs.get("attention_mask")
        queries, prompt = hidden.shape[1], batch.roles.shape[1]
        cache = kwargs.get("past_key_values")
        past = cache.get_seq_length(layer) if cache is not None and queries < prompt else 0
        new = cut_edges(mask, batch.roles.to(hidden.device), edge_role_codes(edges), queries, hidden.dtype,
                        decode_step=past + queries - prompt, generated_code=ROLE_CODE["generated"])
        attention.inputs = (args, {**kwargs, "attention_mask": new})

    def scale_heads(self, batch: EncodedBatch, layer: int, heads: Sequence[int], alpha: float,
                    role: str | tuple[str, ...] = "all") -> torch.Tensor:
        """Multiply ``heads`` of ``layer`` by ``alpha`` at the positions of ``role`` (0: block them,
        Eq 10), on the output projection's input; returns the edited ``z``. A decode step's query
        is ``generated``.

        >>> with view.trace(batch):
        ...     z = view.scale_heads(batch, 2, heads=[0, 3], alpha=0.0, role="instruction").save()
        >>> tuple(z.shape[-1:]) == (view.n_heads * view.adapter.shape.head_dim,)
        True"""
        out_proj = self.adapter.out_proj(self.model, layer)
        z = out_proj.input
        roles = batch.roles.to(z.device) if z.shape[1] == batch.roles.shape[1] else torch.full(
            z.shape[:2], ROLE_CODE["generated"], dtype=batch.roles.dtype, device=z.device)
        positions = role_mask(roles, [ROLE_CODE[r] for r in expand_role(role)])
        z = scale_heads(z, list(heads), alpha, positions, self.adapter.shape.head_dim)
        out_proj.input = z
        return z
