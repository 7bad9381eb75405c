"""The paper's analyses, one module each. Each is an :class:`~anchors.experiments.base.Analysis`
that :func:`anchors.runner.run` drives: batching, progress, resuming, provenance and saving.

Names are imported on first use, so ``anchors.experiments.configs`` (what the command line needs
to build its options) loads without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_HOMES = {
    "Analysis": "base", "HeadIntervention": "heads", "KnockoutProfile": "knockout", "LensProfile": "lens",
    "PositionControls": "controls", "VariantGroup": "controls", "CONTROL_TARGETS": "controls", "rank_heads": "ranking",
    "parse_pathway": "knockout", "with_lens_aggregates": "lens", "DEFAULT_PATHWAYS": "configs",
    "KnockoutConfig": "configs", "CapabilityConfig": "configs", "CapabilityAnalysis": "capability",
    "CaptionConflict": "caption_conflict", "CaptionConflictConfig": "configs", "LensConfig": "configs", "InterventionConfig": "configs", "ControlsConfig": "configs",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'anchors.experiments' has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
