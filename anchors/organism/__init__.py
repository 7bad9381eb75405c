"""The model organism: the synthetic colour-conflict task, its trainer and the demo that runs the
whole paper on the shipped checkpoints (see :mod:`anchors.models.organisms`)."""

from __future__ import annotations

from ..models.loading import LoadedModel
from ..models.organisms import ORGANISMS, organism_path
from ..models.spec import ModelSpec


def load_organism(name: str = ORGANISMS[0], attn_implementation: str = "sdpa") -> LoadedModel:
    """Load a shipped organism for tracing (see :func:`anchors.models.load_model`)."""
    return ModelSpec(f"organism:{name}", attn_implementation=attn_implementation).load()


__all__ = ["ORGANISMS", "load_organism", "organism_path"]
