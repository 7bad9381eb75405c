"""One function per paper figure, each drawing from a result Dataset alone (no model).

Every function returns a matplotlib Figure; :func:`render` saves the figures a result supports
as PNG and SVG. Colours: the Okabe–Ito colour-blind-safe palette.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import xarray as xr  # noqa: E402

from ..errors import InputError  # noqa: E402
from ..results.schema import MODALITIES, config_of, followed_or_all  # noqa: E402

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442", "#000000")
MODALITY_TITLE = {"text": "text following", "vision": "vision following"}


def _figure(ncols: int, title: str, width: float = 5.2, height: float = 3.6) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, constrained_layout=True)
    fig.suptitle(title)
    for ax in axes[0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, axes[0]


def _band(ax: plt.Axes, x: np.ndarray, values: xr.DataArray, colour: str, label: str) -> None:
    """Mean ± std over samples."""
    mean, std = values.mean("sample").values, values.std("sample").values
    ax.plot(x, mean, color=colour, label=label, linewidth=1.8)
    ax.fill_between(x, mean - std, mean + std, color=colour, alpha=0.18, linewidth=0)


def _readout_place(ds: xr.Dataset) -> str:
    """Where a lens result read the residual stream, from its stored configuration."""
    role = config_of(ds).get("readout_role", "instruction")
    return {"instruction": "instruction tokens", "generated": "the answer position"}.get(role, f"{role} tokens")


def _modalities(ds: xr.Dataset) -> list[str]:
    return [m for m in MODALITIES if (ds.instructed == m).any()]


def knockout_nssd(ds: xr.Dataset, window: int | None = None) -> plt.Figure:
    """Fig 2: NSSD per layer (mean ± std over followed samples) for every pathway."""
    window = int(ds.window.values[0]) if window is None else window
    modalities = _modalities(ds)
    fig, axes = _figure(len(modalities), f"Attention knockout (window {window}): NSSD per layer")
    for ax, modality in zip(axes, modalities):
        part = followed_or_all(ds, modality).sel(window=window)
        for colour, pathway in zip(PALETTE, ds.pathway.values):
            _band(ax, part.layer.values, part.nssd.sel(pathway=pathway), colour, str(pathway))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=MODALITY_TITLE[modality], xlabel="layer (window centre)", ylabel="NSSD (negative: pathway supports following)")
    axes[-1].legend(fontsize=8, loc="lower left")
    return fig


def window_sensitivity(ds: xr.Dataset) -> plt.Figure:
    """Fig 6: mean NSSD per layer for each window size, one panel per pathway."""
    pathways = list(ds.pathway.values)
    fig, axes = _figure(len(pathways), "Knockout window sensitivity: mean NSSD per layer", width=3.6)
    followed = followed_or_all(ds)
    for ax, pathway in zip(axes, pathways):
        for colour, window in zip(PALETTE, ds.window.values):
            ax.plot(ds.layer.values, followed.nssd.sel(pathway=pathway, window=window).mean("sample").values,
                    color=colour, label=f"window {int(window)}")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=str(pathway), xlabel="layer", ylabel="mean NSSD")
    axes[0].legend(fontsize=8)
    return fig


def semantic_vs_format(ds: xr.Dataset) -> plt.Figure:
    """Fig 3a / App C.2: cutting cues→semantic instruction vs cues→format instruction, per variant."""
    variants = list(ds.variant.values)
    fig, axes = _figure(len(variants), "Cues → instruction part knockout: NSSD per layer", width=4.2)
    for ax, variant in zip(axes, variants):
        part = ds.sel(variant=variant)
        followed = followed_or_all(part)
        for colour, target in zip(PALETTE, ds.target.values):
            _band(ax, part.layer.values, followed.nssd.sel(target=target), colour, f"cues → {target}")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"variant: {variant}", xlabel="layer", ylabel="NSSD")
    axes[0].legend(fontsize=8)
    return fig


def ldar_profile(ds: xr.Dataset) -> plt.Figure:
    """Fig 3b: LDAR per layer (followed, failed) and the instruction/answer synchronisation rate."""
    fig, axes = _figure(2, f"Latent decision at {_readout_place(ds)}")
    for colour, outcome in zip(PALETTE, ("followed", "failed")):
        axes[0].plot(ds.layer.values, ds.ldar.sel(outcome=outcome).values, color=colour, marker="o", label=outcome)
        axes[1].plot(ds.layer.values, ds.sync_rate.sel(outcome=outcome).values, color=colour, marker="o", label=outcome)
    axes[0].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[0].set(xlabel="layer", ylabel="LDAR", ylim=(-0.02, 1.02), title="alignment with the final decision")
    axes[1].set(xlabel="layer", ylabel="agreement rate", ylim=(-0.02, 1.02), title="readout tokens vs answer position")
    axes[0].legend(fontsize=8)
    return fig


def generated_necessity(ds: xr.Dataset) -> plt.Figure:
    """Fig 3c: compliant probability after cutting instruction→generated vs cues→generated."""
    wanted = [p for p in ("instruction->generated", "visual->generated", "context->generated") if p in ds.pathway.values]
    window = int(ds.window.values[0])
    fig, axes = _figure(1, f"What the answer position needs (window {window})")
    followed = followed_or_all(ds)
    ax = axes[0]
    ax.plot(ds.layer.values, np.full(ds.sizes["layer"], float(followed.p_compliant_base.mean())), color="grey",
            linestyle=":", label="no knockout")
    for colour, pathway in zip(PALETTE, wanted):
        ax.plot(ds.layer.values, followed.p_compliant.sel(pathway=pathway, window=window).mean("sample").values,
                color=colour, marker="o", label=f"cut {pathway}")
    ax.set(xlabel="layer (window centre)", ylabel="compliant probability in the decision subspace", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
    return fig


def subspace_evolution(ds: xr.Dataset) -> plt.Figure:
    """Fig 4: compliant/competing readout per layer for followed and failed samples, and the
    attention and MLP attributions to the arbitration margin."""
    fig, axes = _figure(3, f"Subspace evolution at {_readout_place(ds)} and margin attribution", width=4.4)
    for ax, outcome in zip(axes[:2], ("followed", "failed")):
        part = ds.where(ds.followed.astype(bool) == (outcome == "followed"), drop=True)
        ax.set(title=f"{outcome} samples (n={part.sizes.get('sample', 0)})", xlabel="layer", ylabel="readout (max logit, top-k mean)")
        if part.sizes.get("sample", 0):
            for colour, subspace in zip(PALETTE, ds.subspace.values):
                _band(ax, ds.layer.values, part.readout.sel(site="post", subspace=subspace), colour, str(subspace))
            ax.legend(fontsize=8)
    ax = axes[2]
    for colour, (name, label) in zip(PALETTE, (("attn_attribution_margin", "attention"), ("mlp_attribution_margin", "MLP"))):
        for style, outcome in (("-", True), ("--", False)):
            part = ds[name].where(ds.followed.astype(bool) == outcome, drop=True)
            if part.sizes.get("sample", 0):
                ax.plot(ds.layer.values, part.mean("sample").values, color=colour, linestyle=style,
                        label=f"{label} ({'followed' if outcome else 'failed'})")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(title="Δ margin per layer", xlabel="layer", ylabel="Δ (compliant − competing)")
    ax.legend(fontsize=8)
    return fig


def head_heatmap(ds: xr.Dataset, top_k: int = 10) -> plt.Figure:
    """Fig 5b: mean head attribution to the margin (layer × head) per modality, top-k marked."""
    if "head_score" in ds:
        scores = ds.head_score
    else:
        scores = xr.concat([followed_or_all(ds, m).head_attribution.mean("sample") for m in MODALITIES],
                           dim=xr.DataArray(list(MODALITIES), dims="modality", name="modality"))
    modalities = list(scores.modality.values)
    fig, axes = _figure(len(modalities), f"Head attribution to the arbitration margin (top {top_k} marked)", width=4.6)
    limit = float(np.nanmax(np.abs(scores.values))) or 1.0
    for ax, modality in zip(axes, modalities):
        grid = scores.sel(modality=modality).transpose("layer", "head").values
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", origin="lower")
        flat = np.argsort(-np.nan_to_num(grid.reshape(-1), nan=-np.inf))[:top_k]
        layers, heads = np.unravel_index(flat, grid.shape)
        ax.scatter(heads, layers, marker="s", s=60, facecolors="none", edgecolors="black", linewidths=1.2)
        ax.set(title=MODALITY_TITLE[str(modality)], xlabel="head", ylabel="layer")
        fig.colorbar(image, ax=ax, label="Δ margin")
    return fig


def mfr_curves(ds: xr.Dataset) -> plt.Figure:
    """Fig 5c: MFR versus k for targeted, random and shared heads, blocking and amplifying."""
    fig, axes = _figure(2, "Modality-following ratio under head interventions")
    for ax, mode in zip(axes, ds.mode.values):
        for colour, selection in zip(PALETTE, ds.selection.values):
            ax.plot(ds.k.values, ds.mfr.sel(mode=mode, selection=selection).values, color=colour, marker="o", label=str(selection))
        low = ds.mfr_random_draw.sel(mode=mode).min("draw").values
        high = ds.mfr_random_draw.sel(mode=mode).max("draw").values
        ax.fill_between(ds.k.values, low, high, color=PALETTE[1], alpha=0.15, linewidth=0)
        ax.axhline(float(ds.mfr_original.sel(mode=mode)), color="grey", linestyle=":", label="original")
        what = "blocking (followed samples)" if mode == "block" else "amplifying (failed samples)"
        ax.set(title=f"{what}, n={int(ds.n_evaluated.sel(mode=mode))}", xlabel="number of heads k", ylabel="MFR", ylim=(-0.02, 1.02))
        ax.legend(fontsize=8)
    return fig


def alpha_sweep(ds: xr.Dataset) -> plt.Figure:
    """Table 4 as a curve: MFR on failed samples when amplifying the top heads by alpha."""
    fig, axes = _figure(1, "Amplification coefficient sweep: MFR on failed samples")
    ax = axes[0]
    ax.plot(ds.alpha.values, ds.mfr_alpha.values, color=PALETTE[0], marker="o")
    ax.set(xlabel="alpha", ylabel="MFR on failed samples", ylim=(-0.02, 1.02), xscale="log")
    return fig


FIGURES: dict[str, dict[str, Callable[[xr.Dataset], plt.Figure]]] = {
    "knockout_profile": {"fig2_knockout_nssd": knockout_nssd, "fig6_window_sensitivity": window_sensitivity,
                         "fig3c_generated_necessity": generated_necessity},
    "position_controls": {"fig3a_semantic_vs_format": semantic_vs_format},
    "lens_profile": {"fig3b_ldar": ldar_profile, "fig4_subspace_evolution": subspace_evolution,
                     "fig5b_head_heatmap": head_heatmap},
    "head_intervention": {"fig5c_mfr_curves": mfr_curves, "table4_alpha_sweep": alpha_sweep, "fig5b_head_scores": head_heatmap},
}


def render(ds: xr.Dataset, out_dir: str | Path, stem: str = "") -> list[Path]:
    """Save every figure the result's experiment supports as PNG and SVG; returns the PNG paths."""
    experiment = ds.attrs.get("experiment")
    if experiment not in FIGURES:
        raise InputError(f"no figures for experiment {experiment!r}; expected one of {sorted(FIGURES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES[experiment].items():
        if name == "fig6_window_sensitivity" and ds.sizes.get("window", 1) < 2:
            continue
        figure = draw(ds)
        base = out_dir / f"{stem}{name}"
        figure.savefig(base.with_suffix(".png"), dpi=110)
        figure.savefig(base.with_suffix(".svg"))
        plt.close(figure)
        written.append(base.with_suffix(".png"))
    return written
