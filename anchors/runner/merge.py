"""Joining a sweep's finished batches into one result."""

from __future__ import annotations

from typing import Sequence

import xarray as xr


def _variable_width_strings(part: xr.Dataset) -> xr.Dataset:
    """Fixed-width strings as objects: concatenating ``<U3`` ids with ``<U4`` ones would otherwise
    truncate the longer ids to the first part's width."""
    wide = {name: part[name].astype(object) for name in part.variables if part[name].dtype.kind == "U"}
    coords = {name: value for name, value in wide.items() if name in part.coords}
    return part.assign_coords(coords).assign({name: value for name, value in wide.items() if name not in coords})


def merge_parts(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    """Finished batches joined along ``sample`` (in order); per-sample variables concatenated, the
    rest taken from the first part."""
    parts = [_variable_width_strings(part) for part in parts]
    with_sample = [name for name in parts[0].data_vars if "sample" in parts[0][name].dims]
    return xr.concat(parts, dim="sample", data_vars=with_sample, coords="minimal", compat="override", join="outer",
                     combine_attrs="override")
