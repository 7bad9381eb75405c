"""Region analyses take only the samples whose region box splits their image tokens: a box that
covers none of them, or all of them, would enter every average as a zero effect. Those samples are
left out before the sweep is planned, each listed with why (and recorded in the result's attrs)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..experiments.base import Analysis
from ..prompts.roles import ROLE_CODE
from ..tracer.encode import encode_batch

REGION_ROLES = frozenset({"region", "off_region"})


def mentions_region(config: Any) -> bool:
    """Whether any role expression in ``config`` (pathways ``a+b->c``, readout or scaling roles)
    names ``region`` or ``off_region``.

    >>> mentions_region({"pathways": ["region->instruction"]}), mentions_region({"role": "visual"})
    (True, False)"""
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    text = json.dumps(config, default=str)
    words = {w for piece in text.replace("->", " ").replace("+", " ").split('"') for w in piece.split()}
    return bool(words & REGION_ROLES)


def region_items(analysis: Analysis, adapter: Any, items: list[Any]) -> tuple[list[Any], list[tuple[str, str]]]:
    """``items`` whose every prompt has a region covering some but not all of its image tokens, and
    (sample id, why) for each left out."""
    kept, excluded = [], []
    for item in items:
        reasons = [why for prompt in analysis.prompts(item) if (why := _problem(adapter, prompt))]
        if reasons:
            excluded.append((analysis.prompts(item)[0].sample_id, reasons[0]))
        else:
            kept.append(item)
    return kept, excluded


def _problem(adapter: Any, prompt: Any) -> str | None:
    if prompt.region is None:
        return "it has no region box"
    roles = encode_batch(adapter, [prompt]).roles[0]
    inside, outside = int((roles == ROLE_CODE["region"]).sum()), int((roles == ROLE_CODE["off_region"]).sum())
    if inside == 0:
        return f"its region {list(prompt.region)} overlaps none of its {outside} image tokens"
    if outside == 0:
        return f"its region {list(prompt.region)} overlaps all {inside} of its image tokens"
    return None
