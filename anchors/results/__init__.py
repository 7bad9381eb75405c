"""Results as labelled xarray Datasets: schema conventions, provenance and NetCDF I/O. Imports
neither torch nor nnsight, so loading a result to plot it is light."""

from .netcdf import SCHEMA_VERSION, check_writable, load, load_result, save
from .provenance import write_result
from .schema import MODALITIES, OUTCOMES, config_of, followed_or_all, sample_coords

__all__ = ["MODALITIES", "OUTCOMES", "check_writable", "config_of", "followed_or_all", "load",
           "load_result", "sample_coords", "save", "SCHEMA_VERSION", "write_result"]
