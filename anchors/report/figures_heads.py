"""Figures of the head interventions and capability checks: Fig 5c, Table 4, Table 1, Tables 2-3 and the organism's agreement check."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from ..results.schema import config_of
from .style import MODALITY_TITLE, PALETTE, instructed_panels, legend_outside, no_samples, panels, place


def mfr_curves(ds: xr.Dataset) -> plt.Figure:
    """Fig 5c: MFR versus k for targeted, random and shared heads, blocking (row 1) and amplifying
    (row 2), for text- and vision-following samples (columns); shared heads only for k up to the
    number that exist."""
    n_shared, n_draws = int(ds.shared.sum()), ds.sizes["draw"]
    modalities = instructed_panels(ds)
    fig, axes = panels(len(modalities), f"Modality-following ratio, heads scaled at {place(ds)}", nrows=len(ds.mode),
                        sharey=True, caption=f"band: min–max of MFR over the {n_draws} random draws; shared: heads in "
                                             f"both modalities' top lists ({n_shared} exist)")
    k = ds.k.values
    for ax, (mode, modality) in zip(axes, [(mode, m) for mode in ds.mode.values for m in modalities]):
        part = ds.sel(mode=mode, instructed_modality=modality)
        what = "blocking, α=0 (followed)" if mode == "block" else \
            f"amplifying, α={config_of(ds).get('amplify_alpha', '')} (failed)"
        ax.set(title=f"{MODALITY_TITLE[modality]}: {what}, n={int(part.n_evaluated)}", xlabel="number of heads k",
               ylabel="MFR", ylim=(-0.02, 1.02), xticks=k)
        if not int(part.n_evaluated):
            no_samples(ax, EMPTY[str(mode)])
            continue
        for colour, selection in zip(PALETTE, ds.selection.values):
            values = part.mfr.sel(selection=selection).values
            shown = k <= n_shared if selection == "shared" else np.ones_like(k, dtype=bool)
            if np.isfinite(values[shown]).any():
                ax.plot(k[shown], values[shown], color=colour, marker="o", label=str(selection))
        if n_draws:
            draws = part.mfr_random_draw
            ax.fill_between(k, draws.min("draw").values, draws.max("draw").values, color=PALETTE[1], alpha=0.15, linewidth=0)
        ax.axhline(float(part.mfr_original), color="grey", linestyle=":", label="no intervention")
    legend_outside(fig, axes[0])
    return fig


def alpha_sweep(ds: xr.Dataset) -> plt.Figure:
    """Table 4 as curves: MFR on failed samples when amplifying the top alpha_k heads by alpha, one
    line per instructed modality (dotted, same colour: without intervention); with answers read
    from generation, the share of degenerate outputs (empty, one token repeated) dashed."""
    k = config_of(ds).get("alpha_k", "")
    fig, axes = panels(1, f"Amplifying the top {k} heads at {place(ds)} by α", width=6.0,
                        caption="MFR on failed samples; dotted: without intervention")
    ax = axes[0]
    ax.set(xlabel="α (scale of the heads' outputs)", ylabel="MFR on failed samples", ylim=(-0.02, 1.02))
    if not int(ds.n_evaluated.sel(mode="amplify", instructed_modality="all")):
        no_samples(ax, EMPTY["amplify"])
        return fig
    for colour, modality in zip(PALETTE, instructed_panels(ds)):
        part = ds.sel(instructed_modality=modality)
        n = int(part.n_evaluated.sel(mode="amplify"))
        ax.plot(ds.alpha.values, part.mfr_alpha.values, color=colour, marker="o", label=f"{MODALITY_TITLE[modality]} (n={n})")
        ax.axhline(float(part.mfr_original.sel(mode="amplify")), color=colour, linestyle=":")
        if config_of(ds).get("answer_from") == "generation":
            ax.plot(ds.alpha.values, part.degenerate_alpha.values, color=colour, linestyle="--", marker="x",
                    label=f"{MODALITY_TITLE[modality]}: degenerate output")
    ax.set(xscale="log", xticks=ds.alpha.values, xticklabels=[f"{a:g}" for a in ds.alpha.values])
    legend_outside(fig, ax)
    return fig


# Why a mode has no samples: blocking is evaluated on followed samples, amplifying on failed ones.
EMPTY = {"block": "no followed samples to block", "amplify": "no failed samples to amplify"}
CAPABILITY_SCORES = ("vqa_accuracy", "correct", "strict", "loose", "cider_d", "bleu_4", "meteor", "perplexity")


def capability_bars(ds: xr.Dataset) -> plt.Figure:
    """Table 1 as bars: each score with no heads blocked, the top-k heads blocked and k random
    heads blocked (error bars: the spread of the random draws' means), one panel per score."""
    scores = [name for name in CAPABILITY_SCORES if name in ds]
    config = config_of(ds)
    fig, axes = panels(len(scores), f"{config.get('task', '')}: top-k {config.get('modality', '')} heads blocked\n"
                        f"at {config.get('scope', 'instruction')} tokens vs k random heads", width=5.6,
                        caption="bars: mean over samples; error bars: standard deviation over random draws;\n"
                                "dotted: no heads blocked")
    ks = ds.k.values
    for ax, name in zip(axes, scores):
        per_draw = ds[name].mean("sample")
        ax.axhline(float(per_draw.sel(condition="none").isel(k=0, draw=0)), color="#444444", linestyle=":", label="none")
        x = np.arange(len(ks))
        ax.bar(x - 0.2, per_draw.sel(condition="targeted").isel(draw=0).values, 0.4, color=PALETTE[0], label="targeted")
        random = per_draw.sel(condition="random")
        ax.bar(x + 0.2, random.mean("draw").values, 0.4, yerr=random.std("draw").values, color=PALETTE[1], label="random")
        ax.set(title=name, xticks=x, xticklabels=[f"k={int(k)}" for k in ks], ylabel=name)
    legend_outside(fig, axes[-1])
    return fig


def caption_conflict_bars(ds: xr.Dataset) -> plt.Figure:
    """Tables 2-3 as bars: per setting, the mean CIDEr-D of the captions and the share that name the
    misleading text's entity."""
    labels = [{"none": "none", "knockout": f"{p} @{int(l)}", "targeted": f"top-{int(k)} ×α",
               "random": f"random-{int(k)} ×α #{int(d)}"}[str(kind)]
              for kind, p, l, k, d in zip(ds.kind.values, ds.pathway.values, ds.layer.values, ds.k.values, ds.draw.values)]
    fig, axes = panels(2, "Captions under misleading text: knockouts and amplified vision heads", width=6.0,
                        caption="bars: mean over samples")
    colours = [PALETTE[{"none": 7, "knockout": 0, "targeted": 2, "random": 1}[str(k)]] for k in ds.kind.values]
    x = np.arange(ds.sizes["setting"])
    for ax, values, name in ((axes[0], ds.cider_d.mean("sample").values, "CIDEr-D"),
                             (axes[1], ds.entity_rate.values, "captions naming the misleading entity")):
        ax.bar(x, values, color=colours)
        ax.set(title=name, xticks=x, ylabel="mean" if name == "CIDEr-D" else "share")
        ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
    axes[1].set_ylim(-0.02, 1.02)
    return fig


def agreement_bars(ds: xr.Dataset) -> plt.Figure:
    """The organism's capability: accuracy on image-text-agreeing examples with each modality's
    top-k heads or k random heads blocked (mean over draws, error bars their spread)."""
    fig, axes = panels(2, f"Organism: agreeing examples with heads blocked at {ds.attrs.get('role', '')} tokens",
                        sharey=True, caption="dotted: no heads blocked; error bars: standard deviation over random draws")
    x = np.arange(ds.sizes["k"])
    for ax, modality in zip(axes, ds.instructed_modality.values):
        part = ds.accuracy.sel(instructed_modality=modality)
        ax.axhline(float(part.sel(condition="none").isel(k=0, draw=0)), color="#444444", linestyle=":")
        ax.bar(x - 0.2, part.sel(condition="targeted").isel(draw=0).values, 0.4, color=PALETTE[0], label="top-k heads")
        random = part.sel(condition="random")
        ax.bar(x + 0.2, random.mean("draw").values, 0.4, yerr=random.std("draw").values, color=PALETTE[1], label="random heads")
        ax.set(title=f"{MODALITY_TITLE[str(modality)]} instruction", xticks=x,
               xticklabels=[f"k={int(k)}" for k in ds.k.values], ylabel="accuracy", ylim=(0, 1.05))
    legend_outside(fig, axes[-1])
    return fig
