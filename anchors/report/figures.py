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


BAND = "line: mean over samples; band: 95% confidence interval of the mean (±1.96 standard errors)"


def _figure(ncols: int, title: str, width: float = 5.2, height: float = 3.6, *, nrows: int = 1, sharey: bool = False,
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


def _legend_outside(fig: plt.Figure, ax: plt.Axes) -> None:
    """One legend for the figure, right of the panels, off the data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, frameon=False)


def _band(ax: plt.Axes, x: np.ndarray, values: xr.DataArray, colour: str, label: str) -> None:
    """Mean over samples and its 95% confidence interval (±1.96 standard errors)."""
    n = values.sizes["sample"]
    mean = values.mean("sample").values
    half = 1.96 * values.std("sample").values / np.sqrt(max(n, 1))
    ax.plot(x, mean, color=colour, label=label, linewidth=1.8)
    ax.fill_between(x, mean - half, mean + half, color=colour, alpha=0.15, linewidth=0)


PLACES = {"instruction": "instruction tokens", "generated": "the answer position"}


def main_window(ds: xr.Dataset) -> int:
    """The knockout window drawn when one is shown: the first one the analysis was given."""
    return int(config_of(ds).get("main_window", ds.window.values[0]))


def place(ds: xr.Dataset) -> str:
    """Where a lens result read the residual stream, or an intervention scaled the heads, from its
    stored configuration."""
    config = config_of(ds)
    role = config.get("readout_role", config.get("role", "instruction"))
    return PLACES.get(role, f"{role} tokens")


def _modalities(ds: xr.Dataset) -> list[str]:
    return [m for m in MODALITIES if (ds.instructed == m).any()]


def knockout_nssd(ds: xr.Dataset, window: int | None = None) -> plt.Figure:
    """Fig 2: NSSD per layer (mean ± std over followed samples) for every pathway."""
    window = main_window(ds) if window is None else window
    modalities = _modalities(ds)
    fig, axes = _figure(len(modalities), f"Attention knockout (window {window}): NSSD per layer", height=4.2,
                        sharey=True, caption=f"followed samples; {BAND}")
    for ax, modality in zip(axes, modalities):
        part = followed_or_all(ds, modality).sel(window=window)
        for colour, pathway in zip(PALETTE, ds.pathway.values):
            _band(ax, part.layer.values, part.nssd.sel(pathway=pathway), colour, str(pathway))
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"{MODALITY_TITLE[modality]} (n={part.sizes['sample']})", xlabel="layer (window centre)")
    axes[0].set_ylabel("NSSD (negative: pathway supports following)")
    _legend_outside(fig, axes[0])
    return fig


def window_sensitivity(ds: xr.Dataset) -> plt.Figure:
    """Fig 6: mean NSSD per layer for each window size, one panel per pathway."""
    pathways = list(ds.pathway.values)
    ncols = min(3, len(pathways))
    nrows = -(-len(pathways) // ncols)
    fig, axes = _figure(ncols, "Knockout window sensitivity: mean NSSD per layer (one y-scale for all panels)",
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
    _legend_outside(fig, axes[0])
    return fig


def semantic_vs_format(ds: xr.Dataset) -> plt.Figure:
    """Fig 3a / App C.2: cutting cues→semantic instruction vs cues→format instruction, per variant."""
    variants = list(ds.variant.values)
    fig, axes = _figure(len(variants), "Cues → instruction part knockout: NSSD per layer", width=3.8, height=3.8,
                        sharey=True, caption=f"followed samples of each variant; {BAND}")
    for ax, variant in zip(axes, variants):
        followed = followed_or_all(ds.sel(variant=variant))
        for colour, target in zip(PALETTE, ds.target.values):
            _band(ax, ds.layer.values, followed.nssd.sel(target=target), colour, f"cues → {target} part")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"variant: {variant} (n={followed.sizes['sample']})", xlabel="layer (window centre)")
    axes[0].set_ylabel("NSSD")
    _legend_outside(fig, axes[0])
    return fig


def ldar_profile(ds: xr.Dataset) -> plt.Figure:
    """Fig 3b: LDAR per layer (followed, failed) and the instruction/answer synchronisation rate."""
    fig, axes = _figure(2, f"Latent decision at {place(ds)}")
    for colour, outcome in zip(PALETTE, ("followed", "failed")):
        axes[0].plot(ds.layer.values, ds.ldar.sel(outcome=outcome).values, color=colour, marker="o", label=outcome)
        axes[1].plot(ds.layer.values, ds.sync_rate.sel(outcome=outcome).values, color=colour, marker="o", label=outcome)
    axes[0].axhline(0.5, color="grey", linestyle=":", linewidth=1)
    axes[0].set(xlabel="layer", ylabel="LDAR", ylim=(-0.02, 1.02), title="alignment with the final decision")
    axes[1].set(xlabel="layer", ylabel="agreement rate", ylim=(-0.02, 1.02), title="readout tokens vs answer position")
    axes[0].legend(fontsize=8)
    return fig


def generated_necessity(ds: xr.Dataset) -> plt.Figure:
    """Fig 3c: what cutting instruction→generated (vs cues→generated) does to behaviour: MFR after
    the cut per instructed modality (left), and the compliant probability renormalised in the
    decision subspace on followed samples (right)."""
    wanted = [p for p in ("instruction->generated", "visual->generated", "context->generated") if p in ds.pathway.values]
    window = main_window(ds)
    followed = followed_or_all(ds)
    behaviour = "mfr_after" in ds and bool(np.isfinite(ds.mfr_after.sel(window=window)).any())
    fig, axes = _figure(2 if behaviour else 1, f"What the answer position needs (window {window})", width=5.4,
                        caption=f"left: MFR over all samples of a modality (dotted: no knockout); right: mean over "
                                f"{followed.sizes['sample']} followed samples" if behaviour else
                        f"mean over {followed.sizes['sample']} followed samples")
    if behaviour:
        ax = axes[0]
        styles = {"text": "-", "vision": "--"}
        for colour, pathway in zip(PALETTE, wanted):
            for modality in _modalities(ds):
                ax.plot(ds.layer.values, ds.mfr_after.sel(instructed_modality=modality, pathway=pathway, window=window),
                        color=colour, linestyle=styles[modality], marker="o", label=f"cut {pathway}, {modality}")
        for modality in _modalities(ds):
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


def subspace_evolution(ds: xr.Dataset) -> plt.Figure:
    """Fig 4, one row per instructed modality: compliant/competing readout per layer for followed
    and failed samples, and the attention and MLP attributions to the arbitration margin."""
    modalities = _modalities(ds)
    fig, axes = _figure(3, f"Subspace evolution at {place(ds)} and margin attribution", width=4.4, caption=BAND,
                        nrows=len(modalities))
    for row, modality in enumerate(modalities):
        rows = ds.where(ds.instructed == modality, drop=True)
        for ax, outcome in zip(axes[3 * row: 3 * row + 2], ("followed", "failed")):
            part = rows.where(rows.followed.astype(bool) == (outcome == "followed"), drop=True)
            ax.set(title=f"{MODALITY_TITLE[modality]}: {outcome} (n={part.sizes.get('sample', 0)})", xlabel="layer",
                   ylabel="readout (max logit, top-k mean)")
            if part.sizes.get("sample", 0):
                for colour, subspace in zip(PALETTE, ds.subspace.values):
                    _band(ax, ds.layer.values, part.readout.sel(site="post", subspace=subspace), colour, str(subspace))
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
    modalities = _modalities(ds)
    fig, axes = _figure(len(modalities), f"Attention's update to each subspace at {place(ds)}", sharey=True,
                        caption=f"followed samples (all of a modality where none followed); {BAND}")
    for ax, modality in zip(axes, modalities):
        part = followed_or_all(ds, modality)
        for colour, subspace in zip(PALETTE, ds.subspace.values):
            _band(ax, ds.layer.values, part.attn_attribution.sel(subspace=subspace), colour, str(subspace))
        ax.plot(ds.layer.values, part.attn_attribution_margin.mean("sample").values, color="black", linestyle="--",
                label="margin")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set(title=f"{MODALITY_TITLE[modality]} (n={part.sizes['sample']})", xlabel="layer",
               ylabel="Δ readout from attention")
    _legend_outside(fig, axes[0])
    return fig


def head_heatmap(ds: xr.Dataset) -> plt.Figure:
    """Fig 5b: mean head attribution to the margin (layer × head) per modality; marked are the
    heads an intervention result amplified (its alpha_k), or the top 10 of a lens result."""
    if "head_score" in ds:
        scores, top_k = ds.head_score, int(config_of(ds).get("alpha_k", 10))
    else:
        scores, top_k = xr.concat([followed_or_all(ds, m).head_attribution.mean("sample") for m in MODALITIES],
                                  dim=xr.DataArray(list(MODALITIES), dims="modality", name="modality")), 10
    modalities = list(scores.modality.values)
    fig, axes = _figure(len(modalities), f"Head attribution to the arbitration margin at {place(ds)}",
                        width=4.6, caption=f"squares: the top {top_k} heads of each ranking; colour: mean Δ margin "
                                           "over followed samples")
    limit = float(np.nanmax(np.abs(scores.values))) or 1.0
    for ax, modality in zip(axes, modalities):
        grid = scores.sel(modality=modality).transpose("layer", "head").values
        image = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", origin="lower")
        flat = np.argsort(-np.nan_to_num(grid.reshape(-1), nan=-np.inf))[:top_k]
        layers, heads = np.unravel_index(flat, grid.shape)
        ax.scatter(heads, layers, marker="s", s=60, facecolors="none", edgecolors="black", linewidths=1.2)
        ax.set(title=MODALITY_TITLE[str(modality)], xlabel="head", ylabel="layer",
               xticks=range(grid.shape[1]), yticks=range(grid.shape[0]))
        fig.colorbar(image, ax=ax, label="Δ margin")
    return fig


def _instructed(ds: xr.Dataset) -> list[str]:
    """The modalities a head-intervention result reports separately (the paper's panels)."""
    return [m for m in MODALITIES if m in ds.instructed_modality.values]


def mfr_curves(ds: xr.Dataset) -> plt.Figure:
    """Fig 5c: MFR versus k for targeted, random and shared heads, blocking (row 1) and amplifying
    (row 2), for text- and vision-following samples (columns); shared heads only for k up to the
    number that exist."""
    n_shared, n_draws = int(ds.shared.sum()), ds.sizes["draw"]
    modalities = _instructed(ds)
    fig, axes = _figure(len(modalities), f"Modality-following ratio, heads scaled at {place(ds)}", nrows=len(ds.mode),
                        sharey=True, caption=f"band: min–max of MFR over the {n_draws} random draws; shared: heads in "
                                             f"both modalities' top lists ({n_shared} exist)")
    k = ds.k.values
    panels = [(mode, modality) for mode in ds.mode.values for modality in modalities]
    for ax, (mode, modality) in zip(axes, panels):
        part = ds.sel(mode=mode, instructed_modality=modality)
        for colour, selection in zip(PALETTE, ds.selection.values):
            values = part.mfr.sel(selection=selection).values
            shown = k <= n_shared if selection == "shared" else np.ones_like(k, dtype=bool)
            if np.isfinite(values[shown]).any():
                ax.plot(k[shown], values[shown], color=colour, marker="o", label=str(selection))
        if n_draws:
            draws = part.mfr_random_draw
            ax.fill_between(k, draws.min("draw").values, draws.max("draw").values, color=PALETTE[1], alpha=0.15, linewidth=0)
        ax.axhline(float(part.mfr_original), color="grey", linestyle=":", label="no intervention")
        what = "blocking, α=0 (followed)" if mode == "block" else \
            f"amplifying, α={config_of(ds).get('amplify_alpha', '')} (failed)"
        ax.set(title=f"{MODALITY_TITLE[modality]}: {what}, n={int(part.n_evaluated)}", xlabel="number of heads k",
               ylabel="MFR", ylim=(-0.02, 1.02), xticks=k)
    _legend_outside(fig, axes[0])
    return fig


def alpha_sweep(ds: xr.Dataset) -> plt.Figure:
    """Table 4 as curves: MFR on failed samples when amplifying the top alpha_k heads by alpha, one
    line per instructed modality (dotted, same colour: without intervention); with answers read
    from generation, the share of degenerate outputs (empty, one token repeated) dashed."""
    k = config_of(ds).get("alpha_k", "")
    fig, axes = _figure(1, f"Amplifying the top {k} heads at {place(ds)} by α", width=6.0,
                        caption="MFR on failed samples; dotted: without intervention")
    ax = axes[0]
    for colour, modality in zip(PALETTE, _instructed(ds)):
        part = ds.sel(instructed_modality=modality)
        n = int(part.n_evaluated.sel(mode="amplify"))
        ax.plot(ds.alpha.values, part.mfr_alpha.values, color=colour, marker="o", label=f"{MODALITY_TITLE[modality]} (n={n})")
        ax.axhline(float(part.mfr_original.sel(mode="amplify")), color=colour, linestyle=":")
        if config_of(ds).get("answer_from") == "generation":
            ax.plot(ds.alpha.values, part.degenerate_alpha.values, color=colour, linestyle="--", marker="x",
                    label=f"{MODALITY_TITLE[modality]}: degenerate output")
    ax.set(xlabel="α (scale of the heads' outputs)", ylabel="MFR on failed samples", ylim=(-0.02, 1.02), xscale="log",
           xticks=ds.alpha.values, xticklabels=[f"{a:g}" for a in ds.alpha.values])
    _legend_outside(fig, ax)
    return fig


CAPABILITY_SCORES = ("vqa_accuracy", "correct", "strict", "loose", "cider_d", "bleu_4", "meteor", "perplexity")


def capability_bars(ds: xr.Dataset) -> plt.Figure:
    """Table 1 as bars: each score with no heads blocked, the top-k heads blocked and k random
    heads blocked (error bars: the spread of the random draws' means), one panel per score."""
    scores = [name for name in CAPABILITY_SCORES if name in ds]
    config = config_of(ds)
    fig, axes = _figure(len(scores), f"{config.get('task', '')}: top-k {config.get('modality', '')} heads blocked\n"
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
    _legend_outside(fig, axes[-1])
    return fig


def caption_conflict_bars(ds: xr.Dataset) -> plt.Figure:
    """Tables 2-3 as bars: per setting, the mean CIDEr-D of the captions and the share that name the
    misleading text's entity."""
    labels = [{"none": "none", "knockout": f"{p} @{int(l)}", "targeted": f"top-{int(k)} ×α",
               "random": f"random-{int(k)} ×α #{int(d)}"}[str(kind)]
              for kind, p, l, k, d in zip(ds.kind.values, ds.pathway.values, ds.layer.values, ds.k.values, ds.draw.values)]
    fig, axes = _figure(2, "Captions under misleading text: knockouts and amplified vision heads", width=6.0,
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
    fig, axes = _figure(2, f"Organism: agreeing examples with heads blocked at {ds.attrs.get('role', '')} tokens",
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
    _legend_outside(fig, axes[-1])
    return fig


FIGURES: dict[str, dict[str, Callable[[xr.Dataset], plt.Figure]]] = {
    "knockout_profile": {"fig2_knockout_nssd": knockout_nssd, "fig6_window_sensitivity": window_sensitivity,
                         "fig3c_generated_necessity": generated_necessity},
    "position_controls": {"fig3a_semantic_vs_format": semantic_vs_format},
    "lens_profile": {"fig3b_ldar": ldar_profile, "fig4_subspace_evolution": subspace_evolution,
                     "fig5a_attention_subspaces": attention_subspaces,
                     "fig5b_head_heatmap": head_heatmap},
    "head_intervention": {"fig5c_mfr_curves": mfr_curves, "table4_alpha_sweep": alpha_sweep, "fig5b_head_heatmap": head_heatmap},
    "capability": {"table1_capability": capability_bars},
    "caption_conflict": {"table2_3_caption_conflict": caption_conflict_bars},
    "organism_agreement": {"organism_agreement": agreement_bars},
}


def render(ds: xr.Dataset, out_dir: str | Path, stem: str = "", skip: tuple[str, ...] = ()) -> list[Path]:
    """Save every figure the result's experiment supports as PNG and SVG; returns the PNG paths."""
    experiment = ds.attrs.get("experiment")
    if experiment not in FIGURES:
        raise InputError(f"no figures for experiment {experiment!r}; expected one of {sorted(FIGURES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in FIGURES[experiment].items():
        if name in skip or name == "fig6_window_sensitivity" and ds.sizes.get("window", 1) < 2:
            continue
        figure = draw(ds)
        base = out_dir / f"{stem}{name}"
        figure.savefig(base.with_suffix(".png"), dpi=110)
        figure.savefig(base.with_suffix(".svg"))
        plt.close(figure)
        written.append(base.with_suffix(".png"))
    return written
