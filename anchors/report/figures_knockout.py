"""Figures of the knockout results: Fig 2, Fig 6 (window sensitivity), Fig 3a (position controls) and Fig 3c."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ..results.schema import followed_or_all
from .style import BAND, MODALITY_TITLE, PALETTE, band, legend_outside, main_window, panels, present_modalities


def _nssd_panel(ax: plt.Axes, layers: np.ndarray, profiles: dict[str, xr.DataArray], title: str) -> None:
    """One panel of NSSD per layer: each labelled profile's mean and interval over samples, and zero."""
    for colour, (label, values) in zip(PALETTE, profiles.items()):
        band(ax, layers, values, colour, label)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(title=title, xlabel="layer (window centre)")


def knockout_nssd(ds: xr.Dataset, window: int | None = None) -> plt.Figure:
    """Fig 2: NSSD per layer (mean ± std over followed samples) for every pathway."""
    window = main_window(ds) if window is None else window
    modalities = present_modalities(ds)
    fig, axes = panels(len(modalities), f"Attention knockout (window {window}): NSSD per layer", height=4.2,
                        sharey=True, caption=f"followed samples; {BAND}")
    for ax, modality in zip(axes, modalities):
        part = followed_or_all(ds, modality).sel(window=window)
        _nssd_panel(ax, part.layer.values, {str(p): part.nssd.sel(pathway=p) for p in ds.pathway.values},
                    f"{MODALITY_TITLE[modality]} (n={part.sizes['sample']})")
    axes[0].set_ylabel("NSSD (negative: pathway supports following)")
    legend_outside(fig, axes[0])
    return fig


def window_sensitivity(ds: xr.Dataset) -> plt.Figure:
    """Fig 6: mean NSSD per layer for each window size, one panel per pathway."""
    pathways = list(ds.pathway.values)
    ncols = min(3, len(pathways))
    nrows = -(-len(pathways) // ncols)
    fig, axes = panels(ncols, "Knockout window sensitivity: mean NSSD per layer (one y-scale for all panels)",
                        width=3.8, height=3.0, nrows=nrows, sharey=True, caption="mean over followed samples")
    followed = followed_or_all(ds)
    for ax, pathway in zip(axes, pathways):
        for colour, window in zip(PALETTE, sorted(int(w) for w in ds.window.values)):
            ax.plot(ds.layer.values, followed.nssd.sel(pathway=pathway, window=window).mean("sample").values,
                    color=colour, marker="o", markersize=3, label=f"window {window}")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=str(pathway), xlabel="layer (window centre)", ylabel="mean NSSD")
    for ax in axes[len(pathways):]:
        ax.set_visible(False)
    legend_outside(fig, axes[0])
    return fig


def semantic_vs_format(ds: xr.Dataset) -> plt.Figure:
    """Fig 3a / App C.2: cutting cues→semantic instruction vs cues→format instruction, per variant."""
    variants = list(ds.variant.values)
    fig, axes = panels(len(variants), "Cues → instruction part knockout: NSSD per layer", width=3.8, height=3.8,
                        sharey=True, caption=f"followed samples of each variant; {BAND}")
    for ax, variant in zip(axes, variants):
        followed = followed_or_all(ds.sel(variant=variant))
        _nssd_panel(ax, ds.layer.values, {f"cues → {t} part": followed.nssd.sel(target=t) for t in ds.target.values},
                    f"variant: {variant} (n={followed.sizes['sample']})")
    axes[0].set_ylabel("NSSD")
    legend_outside(fig, axes[0])
    return fig


def generated_necessity(ds: xr.Dataset) -> plt.Figure:
    """Fig 3c: what cutting instruction→generated (vs cues→generated) does to behaviour: MFR after
    the cut per instructed modality (left), and the compliant probability renormalised in the
    decision subspace on followed samples (right)."""
    wanted = [p for p in ("instruction->generated", "visual->generated", "context->generated") if p in ds.pathway.values]
    window = main_window(ds)
    followed = followed_or_all(ds)
    behaviour = "mfr_after" in ds and bool(np.isfinite(ds.mfr_after.sel(window=window)).any())
    fig, axes = panels(2 if behaviour else 1, f"What the answer position needs (window {window})", width=5.4,
                        caption=f"left: MFR over all samples of a modality (dotted: no knockout); right: mean over "
                                f"{followed.sizes['sample']} followed samples" if behaviour else
                        f"mean over {followed.sizes['sample']} followed samples")
    if behaviour:
        ax = axes[0]
        styles = {"text": "-", "vision": "--"}
        for colour, pathway in zip(PALETTE, wanted):
            for modality in present_modalities(ds):
                ax.plot(ds.layer.values, ds.mfr_after.sel(instructed_modality=modality, pathway=pathway, window=window),
                        color=colour, linestyle=styles[modality], marker="o", label=f"cut {pathway}, {modality}")
        for modality in present_modalities(ds):
            ax.axhline(float(ds.mfr_base.sel(instructed_modality=modality)), color="grey", linestyle=":")
        ax.set(xlabel="layer (window centre)", ylabel="MFR after the cut", ylim=(-0.02, 1.02))
        ax.legend(fontsize=7)
    ax = axes[-1]
    ax.plot(ds.layer.values, np.full(ds.sizes["layer"], float(followed.p_compliant_base.mean())), color="grey",
            linestyle=":", label="no knockout")
    for colour, pathway in zip(PALETTE, wanted):
        ax.plot(ds.layer.values, followed.p_compliant.sel(pathway=pathway, window=window).mean("sample").values,
                color=colour, marker="o", label=f"cut {pathway}")
    ax.set(xlabel="layer (window centre)", ylabel="compliant probability in the decision subspace", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    return fig
