"""One function per paper figure, each drawing from a result Dataset alone (no model), and
:func:`render`, which saves the figures an experiment's record lists as PNG and SVG.

Which figures an experiment has is its record's (:mod:`anchors.results.records`);
:data:`FIGURES` is derived from the records. A figure that fails is logged and reported, and every
other figure is still written.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import xarray as xr

from ..errors import InputError
from ..results.records import RECORDS, record
from .figures_image import image_overlays, region_mass_by_layer
from .figures_heads import agreement_bars, alpha_sweep, capability_bars, caption_conflict_bars, mfr_curves
from .figures_knockout import generated_necessity, knockout_nssd, semantic_vs_format, window_sensitivity
from .figures_lens import attention_subspaces, head_heatmap, ldar_profile, subspace_evolution
from .style import main_window, place

__all__ = ["FIGURES", "Drawn", "agreement_bars", "alpha_sweep", "attention_subspaces", "capability_bars",
           "caption_conflict_bars", "generated_necessity", "head_heatmap", "image_overlays", "knockout_nssd",
           "ldar_profile", "main_window", "mfr_curves", "place", "region_mass_by_layer", "render",
           "semantic_vs_format", "subspace_evolution",
           "window_sensitivity"]
Draw = Callable[[xr.Dataset], plt.Figure]
FIGURES: dict[str, dict[str, Draw]] = {r.name: {name: globals()[function] for name, function in r.figures}
                                       for r in RECORDS}


@dataclass(frozen=True)
class Drawn:
    """What :func:`render` did: the PNGs written, and each figure that failed with its reason."""

    written: tuple[Path, ...]
    failed: tuple[tuple[str, str], ...] = ()


def _applies(ds: xr.Dataset, name: str) -> bool:
    return not (name == "fig6_window_sensitivity" and ds.sizes.get("window", 1) < 2)


def render(ds: xr.Dataset, out_dir: str | Path, stem: str = "", skip: tuple[str, ...] = (),
           log: Callable[[str], None] = lambda message: None, formats: tuple[str, ...] = ("png", "svg")) -> Drawn:
    """Save every figure the result's experiment has in ``formats`` (PNG first: ``written`` lists the
    PNGs); a figure that raises is logged (with its traceback's last line) and listed in ``failed``,
    and the others are written."""
    experiment = ds.attrs.get("experiment")
    try:
        figures = FIGURES[record(str(experiment)).name]
    except InputError:
        raise InputError(f"no figures for experiment {experiment!r}; expected one of {sorted(FIGURES)}") from None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, failed = [], []
    for name, draw in figures.items():
        if name in skip or not _applies(ds, name):
            continue
        try:
            figure = draw(ds)
            base = out_dir / f"{stem}{name}"
            for suffix in formats:
                figure.savefig(base.with_suffix(f".{suffix}"), **({"dpi": 110} if suffix == "png" else {}))
            written.append(base.with_suffix(".png"))
        except Exception as error:  # noqa: BLE001 - one figure never loses the others
            reason = f"{type(error).__name__}: {error}"
            failed.append((name, reason))
            log(f"figure {stem}{name} failed: {reason}\n{traceback.format_exc(limit=-1).strip()}")
        finally:
            plt.close("all")
    return Drawn(tuple(written), tuple(failed))
