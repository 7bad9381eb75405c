"""The result files of a run directory, as the report and the explorer read them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import xarray as xr

from ..errors import InputError
from ..results.netcdf import load_result
from ..results.records import NAMES


def readable_results(run_dir: Path, log: Callable[[str], None]) -> tuple[list[tuple[Path, xr.Dataset]], list[str]]:
    """The result files of ``run_dir`` that load, in the paper's order; the others, with why (logged)."""
    loaded, skipped = [], []
    for path in sorted(run_dir.glob("*.nc")):
        try:
            ds = load_result(path, NAMES)
        except InputError as error:
            skipped.append(str(error))
            log(f"skipped: {error}")
            continue
        loaded.append((path, ds))
    loaded.sort(key=lambda item: (NAMES.index(item[1].attrs["experiment"]), item[0].name))
    return loaded, skipped
