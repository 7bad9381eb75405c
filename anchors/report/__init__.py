"""Figures from NetCDF results and the self-contained HTML report."""

from .figures import FIGURES, render
from .html import key_numbers, write_report

__all__ = ["FIGURES", "key_numbers", "render", "write_report"]
