"""Results as labelled xarray Datasets: schema conventions, provenance and NetCDF I/O. Imports
neither torch nor nnsight, so loading a result to plot it is light; names are imported on first
use, so checking an output path does not even load xarray."""

from __future__ import annotations

from ..lazy import lazy_names

_HOMES = {
    "SCHEMA_VERSION": "netcdf", "check_writable": "netcdf", "load": "netcdf", "load_result": "netcdf", "save": "netcdf",
    "write_result": "provenance", "MODALITIES": "schema", "OUTCOMES": "schema", "config_of": "schema",
    "followed_or_all": "schema", "sample_coords": "schema",
}
__all__ = sorted(_HOMES)


__getattr__ = lazy_names(__name__, _HOMES)
