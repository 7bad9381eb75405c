"""Head ranking by per-head attribution (Eq 9), from a lens result alone (no torch)."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import InputError
from ..prompts.prompt import MODALITIES
from ..results.schema import followed_or_all


def rank_heads(lens: xr.Dataset) -> xr.Dataset:
    """Rank heads per instructed modality by their mean margin attribution (Eq 9) over followed
    samples (all samples of that modality where none followed). Returns ``score`` (modality, layer,
    head) and ``ranking`` (modality, rank) of flat head indices ``layer * n_heads + head``."""
    if "head_attribution" not in lens:
        raise InputError("the lens result has no head_attribution: run the lens profile with heads")
    scores = []
    for modality in MODALITIES:
        chosen = followed_or_all(lens, modality).head_attribution
        scores.append(chosen.mean("sample") if chosen.sizes["sample"] else xr.zeros_like(lens.head_attribution.isel(sample=0)))
    score = xr.concat(scores, dim=xr.DataArray(list(MODALITIES), dims="modality", name="modality"))
    ranking = np.argsort(-score.stack(flat=("layer", "head")).values, axis=1, kind="stable")  # layer-major
    return xr.Dataset(
        {"score": score.drop_vars([c for c in score.coords if c not in ("modality", "layer", "head")]),
         "ranking": (("modality", "rank"), ranking)},
        coords={"rank": np.arange(ranking.shape[1])},
    )


def top_heads(ranked: xr.Dataset, top: int) -> dict[str, list[tuple[str, str, str, str]]]:
    """Per modality, the ``top`` heads as (rank, layer, head, score) rows for display."""
    n_heads = ranked.sizes["head"]
    out = {}
    for modality in ranked.modality.values:
        rows = []
        for rank, flat in enumerate(ranked.ranking.sel(modality=modality).values[:top]):
            layer, head = divmod(int(flat), n_heads)
            score = float(ranked.score.sel(modality=modality, layer=layer, head=head))
            rows.append((f"#{rank + 1}", str(layer), str(head), f"{score:+.4f}"))
        out[str(modality)] = rows
    return out
