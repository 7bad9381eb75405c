"""The paper's analyses, one module each. Each is an :class:`~anchors.experiments.base.Analysis`
that :func:`anchors.runner.run` drives: batching, progress, resuming, provenance and saving.

Names are imported on first use, so ``anchors.experiments.configs`` (what the command line needs
to build its options) loads without torch.
"""

from __future__ import annotations

from ..lazy import lazy_names

from ..results.records import RECORDS

# Each record's analysis and config class, then the other public names.
_HOMES = {
    **{r.analysis[1]: r.analysis[0] for r in RECORDS if r.analysis},
    **{r.config: "configs" for r in RECORDS if r.config},
    "Analysis": "base", "Resolved": "base", "VariantGroup": "controls", "CONTROL_TARGETS": "controls",
    "rank_heads": "ranking", "parse_pathway": "configs", "with_lens_aggregates": "lens", "DEFAULT_PATHWAYS": "configs",
}
__all__ = sorted(_HOMES)


__getattr__ = lazy_names(__name__, _HOMES)
