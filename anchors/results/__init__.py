"""Results as labelled xarray Datasets: schema conventions, provenance and NetCDF I/O. Imports
neither torch nor nnsight, so loading a result to plot it is light."""

from .netcdf import check_writable, load, load_result, save
from .schema import EXPERIMENTS, MODALITIES, OUTCOMES, config_of, followed_or_all, sample_coords

__all__ = ["EXPERIMENTS", "MODALITIES", "OUTCOMES", "check_writable", "config_of", "followed_or_all", "load",
           "load_result", "sample_coords", "save"]
