"""Results as labelled xarray Datasets: schema conventions, provenance and NetCDF I/O. Imports
neither torch nor nnsight, so loading a result to plot it is light; names are imported on first
use, so checking an output path does not even load xarray."""

from __future__ import annotations

from ..lazy import lazy_names
# Imported here, not on first use: neither module loads xarray before a file is read, and nnsight
# gives every object a ``save`` attribute, which a lazily exported ``save`` would never override.
from .netcdf import SCHEMA_VERSION, check_writable, load, load_group, load_result, save
from .provenance import write_result

_HOMES = {
    "MODALITIES": "schema", "OUTCOMES": "schema", "config_of": "schema",
    "followed_or_all": "schema", "sample_coords": "schema",
}
__all__ = sorted(_HOMES) + ["SCHEMA_VERSION", "check_writable", "load", "load_group", "load_result", "save", "write_result"]


__getattr__ = lazy_names(__name__, _HOMES)
