"""Figures from NetCDF results and the self-contained HTML report."""

import matplotlib

matplotlib.use("Agg")  # files only, never a window: before any figure module imports pyplot

from .figures import FIGURES, Drawn, render  # noqa: E402
from .html import write_report  # noqa: E402
from .numbers import key_numbers  # noqa: E402

__all__ = ["FIGURES", "Drawn", "key_numbers", "render", "write_report"]
