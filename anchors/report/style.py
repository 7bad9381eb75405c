"""What every figure shares: the Okabe–Ito colour-blind-safe palette, panels with integer ticks
and a caption, the mean-and-interval band, one legend outside the panels, a labelled empty panel,
and where a result read or scaled (from its stored configuration)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.ticker import MaxNLocator

from ..results.schema import MODALITIES, config_of

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
MODALITY_TITLE = {"text": "text following", "vision": "vision following"}
BAND = "line: mean over samples; band: 95% confidence interval of the mean (±1.96 standard errors)"
PLACES = {"instruction": "instruction tokens", "generated": "the answer position"}


def panels(ncols: int, title: str, width: float = 5.2, height: float = 3.6, *, nrows: int = 1, sharey: bool = False,
           caption: str = "") -> tuple[plt.Figure, np.ndarray]:
    """Panels with integer x ticks; ``sharey`` where panels compare magnitudes; ``caption`` under them."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, sharey=sharey,
                             layout="constrained")
    fig.suptitle(title)
    if caption:
        fig.supxlabel(caption, fontsize=8, color="#444444")
    for ax in axes.flat:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, axes.reshape(-1)


def legend_outside(fig: plt.Figure, ax: plt.Axes) -> None:
    """One legend for the figure, right of the panels, off the data: ``ax``'s, or the first panel's
    that has labelled lines (none when nothing is labelled)."""
    handles, labels = ax.get_legend_handles_labels()
    for other in fig.axes:
        if handles:
            break
        handles, labels = other.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)


def band(ax: plt.Axes, x: np.ndarray, values: xr.DataArray, colour: str, label: str) -> None:
    """Mean over samples and its 95% confidence interval (±1.96 standard errors)."""
    n = values.sizes["sample"]
    mean = values.mean("sample").values
    half = 1.96 * values.std("sample").values / np.sqrt(max(n, 1))
    ax.plot(x, mean, color=colour, label=label, linewidth=1.8)
    ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.15, linewidth=0)


def no_samples(ax: plt.Axes, why: str) -> None:
    """Mark a panel that has nothing to draw, saying why (e.g. no failed samples to amplify)."""
    ax.text(0.5, 0.5, f"no samples\n{why}", transform=ax.transAxes, ha="center", va="center", color="#666666",
            fontsize=9, wrap=True)


def main_window(ds: xr.Dataset) -> int:
    """The knockout window drawn when one is shown: the first one the analysis was given."""
    return int(config_of(ds).get("main_window", ds.window.values[0]))


def place(ds: xr.Dataset) -> str:
    """Where a lens result read the residual stream, or an intervention scaled the heads, from its
    stored configuration."""
    config = config_of(ds)
    config = config.get("lens_config", config)  # a head ranking: where its lens read
    role = config.get("readout_role", config.get("role", "instruction"))
    return PLACES.get(role, f"{role} tokens")


def present_modalities(ds: xr.Dataset) -> list[str]:
    """The instructed modalities a result has samples of."""
    return [m for m in MODALITIES if (ds.instructed == m).any()]


def instructed_panels(ds: xr.Dataset) -> list[str]:
    """The modalities a head-intervention result reports separately (the paper's panels)."""
    return [m for m in MODALITIES if m in ds.instructed_modality.values]
