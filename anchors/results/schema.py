"""Conventions shared by every result Dataset (no torch): the names of the per-sample
coordinates, sample outcomes, and which samples an aggregate is taken over."""

from __future__ import annotations

import json
import warnings
from typing import Sequence

import numpy as np
import xarray as xr

from ..prompts.prompt import MODALITIES, TracedSample

__all__ = ["MODALITIES", "OUTCOMES", "by_instructed_modality", "config_of", "followed_or_all", "sample_coords"]
OUTCOMES: tuple[str, ...] = ("followed", "failed", "all")


def sample_coords(samples: Sequence[TracedSample], answers: Sequence[str]) -> dict[str, tuple[str, list]]:
    """The per-sample coordinates of ``samples`` whose greedy answers are ``answers``;
    ``followed`` = the answer is compliant."""
    return {
        "sample": ("sample", [s.sample_id for s in samples]),
        "task": ("sample", [s.task for s in samples]),
        "instructed": ("sample", [s.instructed for s in samples]),
        "style": ("sample", [s.style for s in samples]),
        "answer": ("sample", list(answers)),
        "followed": ("sample", [a == "compliant" for a in answers]),
    }


def followed_or_all(ds: xr.Dataset, modality: str | None = None) -> xr.Dataset:
    """The samples an aggregate is taken over: the followed ones (of ``modality`` when given), or
    all of them when none followed, so a figure or ranking is never empty."""
    chosen = ds if modality is None else ds.where(ds.instructed == modality, drop=True)
    if not chosen.sizes.get("sample", 0):
        return chosen
    followed = chosen.where(chosen.followed.astype(bool), drop=True)
    return followed if followed.sizes.get("sample", 0) else chosen


def by_instructed_modality(values: xr.DataArray, instructed: np.ndarray) -> xr.DataArray:
    """The mean over samples (NaN ignored) of those instructed to follow each modality and of all of
    them, along a new ``instructed_modality`` dimension (text, vision, all); NaN where none."""
    groups = {m: instructed == m for m in MODALITIES} | {"all": np.ones(len(instructed), dtype=bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # the mean of no sample is NaN
        parts = [values.isel(sample=np.flatnonzero(rows)).mean("sample") for rows in groups.values()]
    return xr.concat(parts, dim=xr.DataArray(list(groups), dims="instructed_modality", name="instructed_modality"))


def config_of(ds: xr.Dataset) -> dict:
    """The analysis's resolved config stored in a result."""
    return json.loads(ds.attrs.get("config", "{}"))
