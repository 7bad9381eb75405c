"""Figures of the lens results: Fig 3b (LDAR), Fig 4 (subspace evolution), Fig 5a and Fig 5b (head heatmap)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ..results.heads import split_heads
from ..results.schema import MODALITIES, config_of, followed_or_all
from .style import BAND, MODALITY_TITLE, PALETTE, band, legend_outside, panels, place, present_modalities


def ldar_profile(ds: xr.Dataset) -> plt.Figure:
    """Fig 3b: LDAR per layer (followed, failed) and the instruction/answer synchronisation rate."""
    fig, axes = panels(2, f"Latent decision at {place(ds)}")
    for colour, outcome in zip(PALETTE, ("followed", "failed")):
        axes[0].plot(ds.layer.values, ds.ldar.sel(outcome=outcome).values, color=colour, marker="o", label=outcome)
        axes[1].plot(ds.layer.values, ds.sync_rate.sel(outcome=outcome).values, color=colour, marker="o", label=outcome)
    axes[0].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[0].set(xlabel="layer", ylabel="LDAR", ylim=(-0.02, 1.02), title="alignment with the final decision")
    axes[1].set(xlabel="layer", ylabel="agreement rate", ylim=(-0.02, 1.02), title="readout tokens vs answer position")
    axes[0].legend(fontsize=8)
    return fig


def subspace_evolution(ds: xr.Dataset) -> plt.Figure:
    """Fig 4, one row per instructed modality: compliant/competing readout per layer for followed
    and failed samples, and the attention and MLP attributions to the arbitration margin."""
    modalities = present_modalities(ds)
    fig, axes = panels(3, f"Subspace evolution at {place(ds)} and margin attribution", width=4.4, caption=BAND,
                        nrows=len(modalities))
    for row, modality in enumerate(modalities):
        rows = ds.where(ds.instructed == modality, drop=True)
        for ax, outcome in zip(axes[3 * row: 3 * row + 2], ("followed", "failed")):
            part = rows.where(rows.followed.astype(bool) == (outcome == "followed"), drop=True)
            ax.set(title=f"{MODALITY_TITLE[modality]}: {outcome} (n={part.sizes.get('sample', 0)})", xlabel="layer",
                   ylabel="readout (max logit, top-k mean)")
            if part.sizes.get("sample", 0):
                for colour, subspace in zip(PALETTE, ds.subspace.values):
                    band(ax, ds.layer.values, part.readout.sel(site="post", subspace=subspace), colour, str(subspace))
                ax.legend(fontsize=8)
        ax = axes[3 * row + 2]
        for colour, (name, label) in zip(PALETTE[2:], (("attn_attribution_margin", "attention"),
                                                       ("mlp_attribution_margin", "MLP"))):
            for style, outcome in (("-", True), ("--", False)):
                part = rows[name].where(rows.followed.astype(bool) == outcome, drop=True)
                if part.sizes.get("sample", 0):
                    ax.plot(ds.layer.values, part.mean("sample").values, color=colour, linestyle=style,
                            label=f"{label} ({'followed' if outcome else 'failed'})")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"{MODALITY_TITLE[modality]}: Δ margin per layer", xlabel="layer", ylabel="Δ (compliant − competing)")
        ax.legend(fontsize=8)
    return fig


def attention_subspaces(ds: xr.Dataset) -> plt.Figure:
    """Fig 5a: what attention adds to the compliant and the competing subspace logit at each layer
    (Eq 7 per subspace), and to their margin, on followed samples, per instructed modality."""
    modalities = present_modalities(ds)
    fig, axes = panels(len(modalities), f"Attention's update to each subspace at {place(ds)}", sharey=True,
                        caption=f"followed samples (all of a modality where none followed); {BAND}")
    for ax, modality in zip(axes, modalities):
        part = followed_or_all(ds, modality)
        for colour, subspace in zip(PALETTE, ds.subspace.values):
            band(ax, ds.layer.values, part.attn_attribution.sel(subspace=subspace), colour, str(subspace))
        ax.plot(ds.layer.values, part.attn_attribution_margin.mean("sample").values, color="black", linestyle="--",
                label="margin")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"{MODALITY_TITLE[modality]} (n={part.sizes['sample']})", xlabel="layer",
               ylabel="Δ readout from attention")
    legend_outside(fig, axes[0])
    return fig


def head_heatmap(ds: xr.Dataset) -> plt.Figure:
    """Fig 5b: mean head attribution to the margin (layer × head) per modality; marked are the
    heads an intervention result amplified (its alpha_k), or the top 10 of a lens result or ranking."""
    if "head_score" in ds:
        scores, top_k = ds.head_score, int(config_of(ds).get("alpha_k", 10))
    elif "score" in ds:  # a head ranking (anchors heads --out)
        scores, top_k = ds.score, 10
    else:
        scores, top_k = xr.concat([followed_or_all(ds, m).head_attribution.mean("sample") for m in MODALITIES],
                                  dim=xr.DataArray(list(MODALITIES), dims="modality", name="modality")), 10
    modalities = list(scores.modality.values)
    fig, axes = panels(len(modalities), f"Head attribution to the arbitration margin at {place(ds)}",
                        width=4.6, caption=f"squares: the top {top_k} heads of each ranking; colour: mean Δ margin "
                                           "over followed samples")
    limit = float(np.nanmax(np.abs(scores.values))) or 1.0
    for ax, modality in zip(axes, modalities):
        grid = scores.sel(modality=modality).transpose("layer", "head").values
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", origin="lower")
        flat = np.argsort(-np.nan_to_num(grid.reshape(-1), nan=-np.inf))[:top_k]
        marked = split_heads(flat, grid.shape[1])
        ax.scatter([h for _, h in marked], [l for l, _ in marked], marker="s", s=60, facecolors="none", edgecolors="black", linewidths=1.2)
        ax.set(title=MODALITY_TITLE[str(modality)], xlabel="head", ylabel="layer",
               xticks=range(grid.shape[1]), yticks=range(grid.shape[0]))
        fig.colorbar(image, ax=ax, label="Δ margin")
    return fig
