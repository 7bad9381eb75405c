"""The built-in model organism: a small trained Qwen2.5-VL that arbitrates between image and text."""

from __future__ import annotations

from pathlib import Path

CHECKPOINTS = Path(__file__).parent / "checkpoints"
ORGANISMS = ("qwen2_5_vl", "llava")


def organism_path(name: str = "qwen2_5_vl") -> Path:
    path = CHECKPOINTS / name
    if name not in ORGANISMS or not (path / "config.json").is_file():
        raise FileNotFoundError(f"no shipped organism {name!r}; available: {', '.join(ORGANISMS)}")
    return path


def load_organism(name: str = "qwen2_5_vl", attn_implementation: str = "sdpa"):
    """Load a shipped organism for tracing (see :func:`anchors.load_model`)."""
    from ..tracer.loading import load_model

    return load_model(str(organism_path(name)), attn_implementation=attn_implementation)
