"""A self-contained HTML report for a run directory: figures embedded, key numbers, provenance."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from ..errors import InputError
from ..results.netcdf import load_result
from ..results.schema import EXPERIMENTS, config_of, followed_or_all
from .figures import FIGURES, main_window, place, render

PROVENANCE_KEYS = ("model", "model_revision", "model_type", "adapter", "attn_implementation", "dtype", "command")


def key_numbers(ds: xr.Dataset) -> list[tuple[str, str]]:
    """The few numbers worth a table, per experiment."""
    experiment = ds.attrs.get("experiment")
    rows: list[tuple[str, str]] = [("samples", str(ds.sizes.get("sample", ds.attrs.get("n_samples", ""))))]
    if "followed" in ds and ds.followed.ndim == 1:
        rows.append(("MFR (followed / all)", f"{float(ds.followed.mean()):.3f}"))
    if experiment == "knockout_profile":
        followed = followed_or_all(ds)
        for pathway in ds.pathway.values:
            mean = followed.nssd.sel(pathway=pathway, window=main_window(ds)).mean("sample")
            layer = int(mean.idxmin("layer"))
            rows.append((f"min mean NSSD, {pathway}", f"{float(mean.min()):.4f} at layer {layer}"))
    elif experiment == "lens_profile":
        ldar = ds.ldar.sel(outcome="followed")
        if np.isfinite(ldar.values).any():
            rows.append(("max LDAR (followed)", f"{float(ldar.max()):.3f} at layer {int(ldar.idxmax('layer'))}"))
        for name, label in (("attn_attribution_margin", "attention"), ("mlp_attribution_margin", "MLP")):
            rows.append((f"mean Δ margin from {label}, summed over layers", f"{float(ds[name].sum('layer').mean()):.3f}"))
    elif experiment == "head_intervention":
        for modality in ds.instructed_modality.values:
            part = ds.sel(instructed_modality=modality)
            for mode in ds.mode.values:
                rows.append((f"{modality}, {mode}: original MFR (n={int(part.n_evaluated.sel(mode=mode))})",
                             f"{float(part.mfr_original.sel(mode=mode)):.3f}"))
                for selection in ds.selection.values:
                    values = ", ".join(f"k={int(k)}: {float(v):.3f}"
                                       for k, v in zip(ds.k.values, part.mfr.sel(mode=mode, selection=selection).values))
                    rows.append((f"{modality}, {mode}, {selection} heads", values))
            rows.append((f"{modality}, amplify alpha sweep",
                         ", ".join(f"α={a:g}: {float(v):.3f}" for a, v in zip(ds.alpha.values, part.mfr_alpha.values))))
    elif experiment == "capability":  # Table 1: mean score per condition and k (random: over draws too)
        for name in [v for v in ("vqa_accuracy", "correct", "strict", "loose", "cider_d", "bleu_4", "meteor", "perplexity")
                     if v in ds]:
            means = ds[name].mean(("sample", "draw"), skipna=True)
            cells = [f"none {float(means.sel(condition='none').isel(k=0)):.3f}"] + [
                f"{c} k={int(k)} {float(means.sel(condition=c, k=k)):.3f}" for c in ("targeted", "random") for k in ds.k.values]
            rows.append((name, "; ".join(cells)))
    elif experiment == "caption_conflict":  # Tables 2-3: per setting, mean CIDEr-D and the misleading-entity rate
        for s in range(ds.sizes["setting"]):
            part = ds.isel(setting=s)
            kind = str(part.kind.values)
            label = {"knockout": f"knockout {part.pathway.values} at layer {int(part.layer)}",
                     "targeted": f"amplify top-{int(part.k)} vision heads",
                     "random": f"amplify {int(part.k)} random heads, draw {int(part.draw)}"}.get(kind, "no intervention")
            rows.append((label, f"CIDEr-D {float(part.cider_d.mean()):.3f}; mentions the misleading entity "
                                f"{float(part.entity_rate):.2f}"))
    elif experiment == "organism_agreement":  # the capability beside the MFR drop (heads result of the same site)
        for modality in ds.instructed_modality.values:
            part = ds.accuracy.sel(instructed_modality=modality)
            cells = [f"k={int(k)}: targeted {float(part.sel(condition='targeted', k=k).isel(draw=0)):.3f}, random "
                     f"{float(part.sel(condition='random', k=k).mean()):.3f}" for k in ds.k.values]
            rows.append((f"{modality}-instructed agreeing examples: accuracy (none "
                         f"{float(part.sel(condition='none').isel(k=0, draw=0)):.3f}) with heads blocked at {ds.attrs.get('role')}",
                         "; ".join(cells)))
    elif experiment == "position_controls":
        for variant in ds.variant.values:
            part = ds.sel(variant=variant)
            followed = followed_or_all(part)
            for target in ds.target.values:
                mean = followed.nssd.sel(target=target).mean("sample")
                rows.append((f"{variant}: min mean NSSD, cues → {target}", f"{float(mean.min()):.4f} at layer {int(mean.idxmin('layer'))}"))
    return rows


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}"><figcaption>{html.escape(path.stem)}</figcaption></figure>'


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; } th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
th { background: #f3f3f3; font-weight: 600; } figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; } code { background: #f5f5f5; padding: 0 3px; }
"""


def _readable(run_dir: Path, log: Callable[[str], None]) -> tuple[list[tuple[Path, xr.Dataset]], list[str]]:
    """The result files of ``run_dir`` that load, in the paper's order; the others, with why."""
    loaded, skipped = [], []
    for path in sorted(run_dir.glob("*.nc")):
        try:
            ds = load_result(path, FIGURES)
        except InputError as error:
            skipped.append(str(error))
            log(f"skipped: {error}")
            continue
        loaded.append((path, ds))
    loaded.sort(key=lambda item: (EXPERIMENTS.index(item[1].attrs["experiment"]), item[0].name))
    return loaded, skipped


def write_report(run_dir: str | Path, log: Callable[[str], None] = lambda message: None) -> Path:
    """Render figures for every result (``*.nc``) in ``run_dir`` and write ``report.html``; a file
    that is not a readable result is skipped with a warning (logged and listed in the report).
    The head heatmap is shown once: with the interventions when the run has them."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory")
    loaded, skipped = _readable(run_dir, log)
    if not loaded:
        raise InputError(f"{run_dir}: no readable result files (*.nc) to report on")
    has_interventions = any(ds.attrs["experiment"] == "head_intervention" for _, ds in loaded)
    sections = []
    for path, ds in loaded:
        skip = ("fig5b_head_heatmap",) if has_interventions and ds.attrs["experiment"] == "lens_profile" else ()
        figures = render(ds, run_dir / "figures", stem=f"{path.stem}-", skip=skip)
        settings = config_of(ds)
        where = f"at {place(ds)}" if ds.attrs["experiment"] in ("lens_profile", "head_intervention") else ""
        sections.append(
            f"<section><h2>{html.escape(' '.join(filter(None, (ds.attrs['experiment'], where))))} — "
            f"<code>{html.escape(path.name)}</code></h2>"
            f"{_table(key_numbers(ds))}{''.join(_image(f) for f in figures)}"
            f"<details><summary>configuration</summary><pre>{html.escape(json.dumps(settings, indent=1))}</pre>"
            "</details></section>"
        )
    first = loaded[0][1]
    provenance = {k: str(first.attrs.get(k, "")) for k in PROVENANCE_KEYS}
    warnings = "".join(f"<li>{html.escape(message)}</li>" for message in skipped)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>instruction-anchors report</title>"
        f"<style>{STYLE}</style></head><body><h1>instruction-anchors report</h1>"
        f"<p>Run directory: <code>{html.escape(str(run_dir))}</code></p>"
        + (f"<h2>Skipped files</h2><ul>{warnings}</ul>" if skipped else "")
        + f"<h2>Provenance</h2>{_table(list(provenance.items()))}"
        f"<p>Versions: <code>{html.escape(first.attrs.get('versions', ''))}</code></p>"
        f"{''.join(sections)}</body></html>"
    )
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
