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
from ..tracer.token_table import ENCODE_CHUNK

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
    (sample id, why) for each left out (the first of its prompts' reasons). Prompts with a box are
    encoded :data:`~anchors.tracer.token_table.ENCODE_CHUNK` at a time, as the processor's per-call
    cost dominates single prompts."""
    prompts = [(n, prompt) for n, item in enumerate(items) for prompt in analysis.prompts(item)]
    reasons: list[str | None] = ["it has no region box" if p.region is None else None for _, p in prompts]
    boxed = [k for k, (_, p) in enumerate(prompts) if p.region is not None]
    for start in range(0, len(boxed), ENCODE_CHUNK):
        chunk = boxed[start:start + ENCODE_CHUNK]
        roles = encode_batch(adapter, [prompts[k][1] for k in chunk]).roles
        for k, row in zip(chunk, roles):
            reasons[k] = _coverage(prompts[k][1].region, row)
    first: dict[int, str] = {}
    for (n, _), why in zip(prompts, reasons):
        if why is not None:
            first.setdefault(n, why)
    excluded = [(analysis.prompts(items[n])[0].sample_id, why) for n, why in first.items()]
    return [item for n, item in enumerate(items) if n not in first], excluded


def _coverage(region: Any, roles: Any) -> str | None:
    """Why a box splits none of a row's image tokens (from its role codes), or None when it does."""
    inside, outside = int((roles == ROLE_CODE["region"]).sum()), int((roles == ROLE_CODE["off_region"]).sum())
    if inside == 0:
        return f"its region {list(region)} overlaps none of its {outside} image tokens"
    if outside == 0:
        return f"its region {list(region)} overlaps all {inside} of its image tokens"
    return None
