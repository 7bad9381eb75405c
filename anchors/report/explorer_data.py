"""What ``anchors explore`` shows, read from a run directory's results without torch: the samples'
index (the fields the table filters and sorts on), the population's bands, and each sample's detail
(its tokens and roles, lens margins, knockout NSSD, head attributions, head interventions)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import xarray as xr

from ..prompts.roles import ROLE_CODE, VISUAL_PARTS
from ..results.netcdf import SAMPLES_GROUP, has_group
from ..results.schema import MODALITIES, config_of
from .run_dir import readable_results

SITE = "post"  # lens readouts after each layer (the layer's output)
BAND = (10, 90)  # the population band drawn around a sample's lens margin: these percentiles
SAMPLE_FIELDS = ("task", "instructed", "style", "answer", "followed")


@dataclass(frozen=True)
class Sources:
    """The results a run directory holds for the explorer (each may be missing): the lens profile
    (at the instruction tokens when there is one), the knockout profile, the head interventions
    (file stem, result) and every result's ``samples`` group merged."""

    lens: xr.Dataset | None
    knockout: xr.Dataset | None
    interventions: tuple[tuple[str, xr.Dataset], ...]
    samples: dict[str, dict[str, Any]]
    sample_fields: dict[str, dict[str, Any]]
    order: tuple[str, ...]


def token_runs(tokens: np.ndarray, roles: np.ndarray) -> list[list[Any]]:
    """A prompt as runs of one repeated (token, role): ``[text, role index, count]`` (576 image tokens
    are one run).

    >>> token_runs(np.array(["<img>", "<img>", " red"]), np.array(["visual", "visual", "context"]))
    [['<img>', 3, 2], [' red', 4, 1]]"""
    if not len(tokens):
        return []
    starts = np.flatnonzero(np.r_[True, (tokens[1:] != tokens[:-1]) | (roles[1:] != roles[:-1])])
    counts = np.diff(np.r_[starts, len(tokens)])
    return [[str(tokens[i]), ROLE_CODE[str(roles[i])], int(n)] for i, n in zip(starts, counts)]


def _samples_of(path: Path, seen: dict[str, dict[str, Any]]) -> None:
    """Add to ``seen`` the samples of ``path``'s ``samples`` group that it does not hold yet."""
    if not has_group(path, SAMPLES_GROUP):
        return
    with xr.open_dataset(path, engine="netcdf4", group=SAMPLES_GROUP) as group:
        ids = [str(s) for s in group.sample.values]
        new = [i for i, sid in enumerate(ids) if sid not in seen]
        if not new:
            return
        group = group.isel(sample=new).load()
    for i, sid in enumerate(str(s) for s in group.sample.values):
        n, image = int(group.n_tokens.values[i]), str(group.image.values[i])
        seen[sid] = {
            "tokens": token_runs(group.token.values[i, :n], group.token_role.values[i, :n]),
            "image": str((path.parent / image).resolve()) if image else "", "variant": str(group.variant.values[i]),
            "compliant_forms": json.loads(str(group.compliant_forms.values[i])),
            "competing_forms": json.loads(str(group.competing_forms.values[i])),
            **_image_tokens(group, i, n),
        }


def _image_tokens(group: xr.Dataset, i: int, n: int) -> dict[str, Any]:
    """Sample ``i``'s image size, region box and image tokens' rectangles (in order, with whether
    each is in the region), where its results carry them."""
    if "token_box" not in group:
        return {}
    roles = group.token_role.values[i, :n]
    image = np.isin(roles, VISUAL_PARTS)
    return {"image_size": [int(group.image_height.values[i]), int(group.image_width.values[i])],
            "region": group.region.values[i], "boxes": group.token_box.values[i, :n][image],
            "in_region": (roles[image] == "region").astype(int).tolist()}


def find_sources(run_dir: Path, log: Callable[[str], None]) -> Sources:
    """The explorer's results in ``run_dir`` (unreadable files skipped, as the report does)."""
    loaded, _ = readable_results(run_dir, log)
    kinds: dict[str, list[tuple[Path, xr.Dataset]]] = {}
    for path, ds in loaded:
        kinds.setdefault(ds.attrs["experiment"], []).append((path, ds))
    lenses = kinds.get("lens_profile", [])
    lenses.sort(key=lambda item: config_of(item[1]).get("readout_role") != "instruction")
    samples: dict[str, dict[str, Any]] = {}
    fields: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    per_sample = [item for kind in ("lens_profile", "knockout_profile", "head_intervention") for item in kinds.get(kind, [])]
    for path, ds in per_sample:
        _samples_of(path, samples)
        for i, sid in enumerate(str(s) for s in ds.sample.values):
            if sid not in fields:
                order.append(sid)
                fields[sid] = {name: ds[name].values[i].item() for name in SAMPLE_FIELDS if name in ds.coords}
    return Sources(lenses[0][1] if lenses else None, kinds.get("knockout_profile", [(None, None)])[0][1],
                   tuple((path.stem, ds) for path, ds in kinds.get("head_intervention", [])), samples, fields,
                   tuple(order))


def on_samples(values: xr.DataArray, order: tuple[str, ...]) -> np.ndarray:
    """``values`` (sample first) for every sample of ``order``, NaN where it has none."""
    return values.reindex(sample=list(order)).values.astype(float)


def lens_series(lens: xr.Dataset) -> dict[str, xr.DataArray]:
    """The margins drawn across layers (sample, layer): at the lens's readout tokens and at the
    answer position, after each layer."""
    role = config_of(lens).get("readout_role", "instruction")
    generated = lens.readout_generated.sel(site=SITE)
    return {f"{role} tokens": lens.margin.sel(site=SITE),
            "answer position": generated.sel(subspace="compliant") - generated.sel(subspace="competing")}


def intervention_settings(ds: xr.Dataset) -> tuple[list[tuple[str, str]], xr.DataArray]:
    """Every setting of a head intervention as (row, column) labels, and the per-sample ``follows``
    (sample, setting): each mode × head selection (rows) × k (columns), then the amplification
    sweep's alphas (one row)."""
    stacked = ds.follows.stack(setting=("mode", "selection", "k")).transpose("sample", "setting")
    labels = [(f"{m} {s} heads", f"k={k}") for m, s, k in stacked.setting.values]
    parts = [stacked.drop_vars(["setting", "mode", "selection", "k"])]
    if "follows_alpha" in ds:
        alpha_k = config_of(ds).get("alpha_k", "")
        parts.append(ds.follows_alpha.rename(alpha="setting").drop_vars("setting").transpose("sample", "setting"))
        labels += [(f"amplify the top {alpha_k} heads", f"α={float(a):g}") for a in ds.alpha.values]
    return labels, xr.concat(parts, dim="setting")


def head_change(ds: xr.Dataset) -> xr.DataArray:
    """Per sample, the share of the targeted settings it was evaluated under (blocking when it
    followed, amplifying when it failed) whose outcome differs from the clean one."""
    targeted = ds.follows.sel(selection="targeted")
    clean = ds.followed.astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.abs(targeted - clean).mean(["mode", "k"], skipna=True)


def population(series: dict[str, np.ndarray], instructed: np.ndarray) -> dict[str, Any]:
    """Per instructed modality and series: the mean and the :data:`BAND` percentiles across layers."""
    out: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        for modality in MODALITIES:
            rows = instructed == modality
            out[modality] = {name: {"mean": np.nanmean(values[rows], axis=0), "low": np.nanpercentile(values[rows], BAND[0], axis=0),
                                    "high": np.nanpercentile(values[rows], BAND[1], axis=0)}
                             for name, values in series.items() if rows.any()}
    return out
