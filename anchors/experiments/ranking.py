"""Head ranking by per-head attribution (Eq 9), from a lens result alone (no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import InputError
from ..prompts.prompt import MODALITIES
from ..results.heads import split_heads
from ..results.provenance import model_of, write_result
from ..results.schema import config_of, followed_or_all
from ..results.variables import describe


def rank_heads(lens: xr.Dataset) -> xr.Dataset:
    """Rank heads per instructed modality by their mean margin attribution (Eq 9) over followed
    samples (all samples of that modality where none followed). Returns ``score`` (modality, layer,
    head), ``ranking`` (modality, rank) of flat indices ``layer * n_heads + head``, the same as
    ``ranking_layer`` / ``ranking_head``, and which samples each ranking used (``ranked_on``:
    followed, all, or none; ``n_ranked``).

    >>> ranked = anchors.rank_heads(anchors.run(anchors.LensProfile(top_k=3), "organism", samples))
    >>> ranked.ranking.dims, ranked.modality.values.tolist()
    (('modality', 'rank'), ['text', 'vision'])"""
    if "head_attribution" not in lens:
        raise InputError("the lens result has no per-head attribution: run 'anchors lens' without --no-heads")
    scores, ranked_on, n_ranked = [], [], []
    for modality in MODALITIES:
        chosen = followed_or_all(lens, modality)
        n = chosen.sizes["sample"]
        n_ranked.append(n)
        ranked_on.append("none" if not n else "followed" if bool(chosen.followed.all()) else "all")
        scores.append(chosen.head_attribution.mean("sample") if n else xr.zeros_like(lens.head_attribution.isel(sample=0)))
    score = xr.concat(scores, dim=xr.DataArray(list(MODALITIES), dims="modality", name="modality"))
    ranking = np.argsort(-score.stack(flat=("layer", "head")).values, axis=1, kind="stable")  # layer-major
    pairs = np.array([split_heads(row, lens.sizes["head"]) for row in ranking]).reshape(*ranking.shape, 2)
    layer, head = pairs[..., 0], pairs[..., 1]
    dims = ("modality", "rank")
    return describe(xr.Dataset(
        {"score": score.drop_vars([c for c in score.coords if c not in ("modality", "layer", "head")]),
         "ranking": (dims, ranking), "ranking_layer": (dims, layer), "ranking_head": (dims, head),
         "ranked_on": ("modality", ranked_on), "n_ranked": ("modality", n_ranked)},
        coords={"rank": np.arange(ranking.shape[1])},
        attrs={"model_type": lens.attrs.get("model_type", "")},
    ))


def top_heads(ranked: xr.Dataset, top: int) -> list[dict[str, object]]:
    """The ``top`` heads of each modality's ranking as rows (modality, rank, layer, head, score,
    and the samples ranked on)."""
    rows = []
    for modality in ranked.modality.values:
        part = ranked.sel(modality=modality)
        for rank in range(min(top, ranked.sizes["rank"])):
            layer, head = int(part.ranking_layer[rank]), int(part.ranking_head[rank])
            rows.append({"modality": str(modality), "rank": rank + 1, "layer": layer, "head": head,
                         "score": round(float(part.score.sel(layer=layer, head=head)), 6),
                         "ranked_on": f"{part.ranked_on.item()} samples (n={int(part.n_ranked)})"})
    return rows


def ranking_result(ranked: xr.Dataset, lens: xr.Dataset, lens_path: str | Path, out: str | Path) -> xr.Dataset:
    """The ranking ``ranked`` of ``lens`` (read from ``lens_path``) saved to ``out`` as a
    ``head_ranking`` result, with the lens's model and data provenance."""
    config = {"lens": str(lens_path), "lens_fingerprint": lens.attrs.get("sweep_fingerprint", ""),
              "lens_config": config_of(lens)}
    return write_result(ranked, out, model_of(lens), "head_ranking", config, n_samples=int(lens.attrs.get("n_samples", 0)),
                        dictionary_hash=str(lens.attrs.get("dictionary_hash", "")),
                        batch_size=int(lens.attrs.get("batch_size", 0)))
