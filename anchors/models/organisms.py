"""The shipped model organisms: small trained VLMs, one checkpoint folder per architecture."""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

CHECKPOINTS = Path(__file__).parent / "checkpoints"
# The architectures an organism can be trained for; the first is the default organism.
ARCHITECTURES: tuple[str, ...] = ("qwen2_5_vl", "llava")
# The shipped organisms: one per architecture, plus "anchored" (Qwen2.5-VL trained with the paper's
# route planted by attention constraints, anchors.organism.constraints).
ORGANISMS: tuple[str, ...] = ARCHITECTURES + ("anchored",)


def organism_path(name: str = ORGANISMS[0]) -> Path:
    path = CHECKPOINTS / name
    if name not in ORGANISMS or not (path / "config.json").is_file():
        raise InputError(f"no shipped organism {name!r}; available: {', '.join(ORGANISMS)}")
    return path
