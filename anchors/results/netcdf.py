"""NetCDF I/O for result Datasets: atomic writes, and loading that checks a result's kind."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from ..errors import InputError

if TYPE_CHECKING:  # xarray is imported where a file is read, so path checks stay light
    import xarray as xr

# The layout of results this version writes (attrs["schema_version"]). Results without one were
# written before issue 22 (version 1) and load unchanged, except that a head ranking's experiment
# was then called ``rank_heads``.
SCHEMA_VERSION = 2
SAMPLES_GROUP = "samples"  # each sample's prompt (anchors.tracer.token_table), beside a result's root dataset
LEGACY_EXPERIMENTS = {"rank_heads": "head_ranking"}


def _own_width(dataset: xr.Dataset) -> xr.Dataset:
    dataset = dataset.copy()
    for variable in dataset.variables.values():
        if variable.dtype.kind in "OU":
            variable.encoding = {k: v for k, v in variable.encoding.items() if k != "dtype"}
    return dataset


def save(dataset: xr.Dataset, path: str | Path, groups: Mapping[str, xr.Dataset] | None = None) -> Path:
    """Write with the netcdf4 engine through a temporary file and a rename (never half-written).
    Strings are written at their own width: a width remembered from a file the data was loaded from
    (the ``dtype`` encoding of a merged part) would truncate longer strings. ``groups`` are written
    as NetCDF groups of the same file (e.g. a result's ``samples``: :func:`load_group` reads one);
    opening the file as usual reads the root dataset only.

    >>> import xarray as xr
    >>> anchors.save(xr.Dataset({"x": ("layer", [1.0, 2.0])}), tmp / "x.nc").name
    'x.nc'
"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    _own_width(dataset).to_netcdf(temporary, engine="netcdf4")
    for name, group in (groups or {}).items():
        _own_width(group).to_netcdf(temporary, engine="netcdf4", group=name, mode="a")
    os.replace(temporary, path)
    return path


def has_group(path: str | Path, group: str) -> bool:
    """Whether the NetCDF file at ``path`` has the group ``group`` (nothing is read but the header)."""
    import netCDF4

    with netCDF4.Dataset(path) as handle:
        return group in handle.groups


def load_group(path: str | Path, group: str) -> xr.Dataset | None:
    """The NetCDF group ``group`` of a result file loaded into memory, or None when it has none
    (results written before it existed).

    >>> import xarray as xr
    >>> path = anchors.save(xr.Dataset({"x": ("layer", [1.0])}), tmp / "g.nc", {"samples": xr.Dataset({"n": ("sample", [3])})})
    >>> anchors.load_group(path, "samples").n.values.tolist(), anchors.load_group(path, "other")
    ([3], None)
"""
    import xarray as xr

    if not has_group(path, group):
        return None
    with xr.open_dataset(path, engine="netcdf4", group=group) as dataset:
        return dataset.load()


def load(path: str | Path) -> xr.Dataset:
    """Load a result fully into memory (the file is closed afterwards).

    >>> import xarray as xr
    >>> path = anchors.save(xr.Dataset({"x": ("layer", [1.0, 2.0])}), tmp / "y.nc")
    >>> anchors.load(path).x.values.tolist()
    [1.0, 2.0]
"""
    import xarray as xr

    with xr.open_dataset(path, engine="netcdf4") as dataset:
        return dataset.load()


def load_result(path: str | Path, kinds: Iterable[str] | None = None) -> xr.Dataset:
    """Load a result file, refusing a missing or unreadable file and, when ``kinds`` is given, a
    result of another experiment, with a message naming the file."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a result file")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        dataset = load(path)
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable NetCDF result ({error})") from error
    version = int(dataset.attrs.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise InputError(f"{path}: written with result schema version {version}; this instruction-anchors reads "
                         f"versions up to {SCHEMA_VERSION}: upgrade it to read this file")
    if version == 1 and dataset.attrs.get("experiment") in LEGACY_EXPERIMENTS:
        dataset.attrs["experiment"] = LEGACY_EXPERIMENTS[dataset.attrs["experiment"]]
    found = dataset.attrs.get("experiment")
    wanted = tuple(kinds) if kinds is not None else None
    if wanted is not None and found not in wanted:
        raise InputError(f"{path}: is a {found or 'non-anchors'} result; expected {' or '.join(wanted)}")
    return dataset


def check_writable(path: str | Path) -> Path:
    """Refuse an output path that cannot be written (a folder, under a file, no permission) before
    any work starts, without creating anything."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--out {path}: is a folder; give a file name")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise InputError(f"--out {path}: cannot write there ({ancestor} is a file, not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"--out {path}: cannot write there (no permission to write in {ancestor})")
    return path
