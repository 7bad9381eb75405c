"""The few numbers worth a table for each experiment: one function per record
(:attr:`~anchors.results.records.Experiment.key_numbers`), and :func:`key_numbers`, which
picks it. A value that is missing says why."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..results.records import record
from ..results.schema import followed_or_all
from .figures_heads import CAPABILITY_SCORES, EMPTY
from .style import main_window

Rows = list[tuple[str, str]]
NOISE = 1e-3  # |mean NSSD| below this at every layer is reported as no effect, not as a minimum


def _minimum(mean: xr.DataArray) -> str:
    """Where a mean NSSD profile is lowest, or that it shows no effect."""
    if not np.isfinite(mean.values).any():
        return "no samples"
    if float(np.nanmax(np.abs(mean.values))) < NOISE:
        return f"no effect (|mean NSSD| < {NOISE:g} at every layer)"
    return f"{float(mean.min()):.4f} at layer {int(mean.idxmin('layer'))}"


def knockout_numbers(ds: xr.Dataset) -> Rows:
    followed = followed_or_all(ds)
    return [(f"min mean NSSD, {pathway}", _minimum(followed.nssd.sel(pathway=pathway, window=main_window(ds)).mean("sample")))
            for pathway in ds.pathway.values]


def controls_numbers(ds: xr.Dataset) -> Rows:
    rows = []
    for variant in ds.variant.values:
        followed = followed_or_all(ds.sel(variant=variant))
        rows += [(f"{variant}: min mean NSSD, cues → {target}", _minimum(followed.nssd.sel(target=target).mean("sample")))
                 for target in ds.target.values]
    return rows


def lens_numbers(ds: xr.Dataset) -> Rows:
    rows = []
    ldar = ds.ldar.sel(outcome="followed")
    if np.isfinite(ldar.values).any():
        rows.append(("max LDAR (followed)", f"{float(ldar.max()):.3f} at layer {int(ldar.idxmax('layer'))}"))
    else:
        rows.append(("max LDAR (followed)", "no followed samples"))
    for name, label in (("attn_attribution_margin", "attention"), ("mlp_attribution_margin", "MLP")):
        rows.append((f"mean Δ margin from {label}, summed over layers", f"{float(ds[name].sum('layer').mean()):.3f}"))
    return rows


def intervention_numbers(ds: xr.Dataset) -> Rows:
    rows = []
    for modality in ds.instructed_modality.values:
        part = ds.sel(instructed_modality=modality)
        for mode in ds.mode.values:
            n = int(part.n_evaluated.sel(mode=mode))
            if not n:
                rows.append((f"{modality}, {mode}", f"— ({EMPTY[str(mode)]})"))
                continue
            rows.append((f"{modality}, {mode}: original MFR (n={n})", f"{float(part.mfr_original.sel(mode=mode)):.3f}"))
            for selection in ds.selection.values:
                values = part.mfr.sel(mode=mode, selection=selection).values
                rows.append((f"{modality}, {mode}, {selection} heads",
                             ", ".join(f"k={int(k)}: {v:.3f}" for k, v in zip(ds.k.values, values))
                             if np.isfinite(values).any() else "— (none drawn: no shared heads)"
                             if selection == "shared" else "—"))
        if int(part.n_evaluated.sel(mode="amplify")):
            rows.append((f"{modality}, amplify alpha sweep",
                         ", ".join(f"α={a:g}: {float(v):.3f}" for a, v in zip(ds.alpha.values, part.mfr_alpha.values))))
    return rows


def capability_numbers(ds: xr.Dataset) -> Rows:
    """Table 1: mean score per condition and k (random: over draws too)."""
    rows = []
    for name in [v for v in CAPABILITY_SCORES if v in ds]:
        means = ds[name].mean(("sample", "draw"), skipna=True)
        cells = [f"none {float(means.sel(condition='none').isel(k=0)):.3f}"] + [
            f"{c} k={int(k)} {float(means.sel(condition=c, k=k)):.3f}" for c in ("targeted", "random") for k in ds.k.values]
        rows.append((name, "; ".join(cells)))
    return rows


def caption_conflict_numbers(ds: xr.Dataset) -> Rows:
    """Tables 2-3: per setting, mean CIDEr-D and the misleading-entity rate."""
    rows = []
    for s in range(ds.sizes["setting"]):
        part = ds.isel(setting=s)
        kind = str(part.kind.values)
        label = {"knockout": f"knockout {part.pathway.values} at layer {int(part.layer)}",
                 "targeted": f"amplify top-{int(part.k)} vision heads",
                 "random": f"amplify {int(part.k)} random heads, draw {int(part.draw)}"}.get(kind, "no intervention")
        rows.append((label, f"CIDEr-D {float(part.cider_d.mean()):.3f}; mentions the misleading entity "
                            f"{float(part.entity_rate):.2f}"))
    return rows


def _mean_ci(values: np.ndarray) -> str:
    """Mean ± half a 95% confidence interval (1.96 standard errors) and n, NaN left out."""
    values = values[np.isfinite(values)]
    if not len(values):
        return "no samples"
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():.4f} ± {half:.4f} (n={len(values)})"


def image_attention_numbers(ds: xr.Dataset) -> Rows:
    """Per head selection: region mass minus its matched boxes' (per sample, mean over the heads),
    the image's share of the attention, and how often the first position is a sink."""
    rows = []
    for selection in ("targeted", "random"):
        chosen = ds.isel(head_read=(ds.head_selection == selection).values)
        if not chosen.sizes["head_read"]:
            continue
        rows += [(f"{selection} heads: region minus matched boxes", _mean_ci(chosen.region_excess.mean("head_read").values)),
                 (f"{selection} heads: attention on the image", _mean_ci(chosen.visual_mass.mean("head_read").values)),
                 (f"{selection} heads: first position a sink", f"{float(chosen.sink.isel(position=0).mean()):.3f}")]
    return rows


def ranking_numbers(ds: xr.Dataset) -> Rows:
    """The top three heads of each modality's ranking (Eq 9)."""
    rows = []
    for modality in ds.modality.values:
        part = ds.sel(modality=modality)
        heads = [f"L{int(l)}H{int(h)} {float(part.score.sel(layer=l, head=h)):.3f}"
                 for l, h in zip(part.ranking_layer.values[:3], part.ranking_head.values[:3])]
        rows.append((f"{modality}: top heads ({part.ranked_on.item()} samples, n={int(part.n_ranked)})", ", ".join(heads)))
    return rows


def agreement_numbers(ds: xr.Dataset) -> Rows:
    """The capability beside the MFR drop (heads result of the same site)."""
    rows = []
    for modality in ds.instructed_modality.values:
        part = ds.accuracy.sel(instructed_modality=modality)
        cells = [f"k={int(k)}: targeted {float(part.sel(condition='targeted', k=k).isel(draw=0)):.3f}, random "
                 f"{float(part.sel(condition='random', k=k).mean()):.3f}" for k in ds.k.values]
        rows.append((f"{modality}-instructed agreeing examples: accuracy (none "
                     f"{float(part.sel(condition='none').isel(k=0, draw=0)):.3f}) with heads blocked at {ds.attrs.get('role')}",
                     "; ".join(cells)))
    return rows


def key_numbers(ds: xr.Dataset) -> Rows:
    """The sample count, the MFR where the result has one, and the experiment's own numbers."""
    rows: Rows = [("samples", str(ds.sizes.get("sample", ds.attrs.get("n_samples", ""))))]
    if "followed" in ds and ds.followed.ndim == 1:
        rows.append(("MFR (followed / all)", f"{float(ds.followed.mean()):.3f}"))
    return rows + globals()[record(str(ds.attrs.get("experiment"))).key_numbers](ds)
