"""A self-contained HTML report for a run directory: figures embedded, key numbers, provenance."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Callable

import xarray as xr

from ..errors import InputError
from ..results.records import record
from ..results.schema import config_of
from .figures import render
from .numbers import key_numbers
from .run_dir import readable_results
from .style import place

PROVENANCE_KEYS = ("model", "model_revision", "model_type", "adapter", "attn_implementation", "dtype", "command")


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
.failed { color: #a40000; }
"""


def _failure(name: str, reason: str) -> str:
    return f'<p class="failed">figure <code>{html.escape(name)}</code> could not be drawn: {html.escape(reason)}</p>'


def _section(run_dir: Path, path: Path, ds: xr.Dataset, has_interventions: bool, log: Callable[[str], None]) -> str:
    """One result's section: its key numbers, figures (a failed one noted in its place) and config.
    The head heatmap is shown once: with the interventions when the run has them."""
    experiment = record(ds.attrs["experiment"])
    skip = ("fig5b_head_heatmap",) if has_interventions and experiment.name == "lens_profile" else ()
    drawn = render(ds, run_dir / "figures", stem=f"{path.stem}-", skip=skip, log=log, formats=("png",))  # what it embeds
    try:
        numbers = _table(key_numbers(ds))
    except Exception as error:  # noqa: BLE001 - the section, its figures and the other sections still show
        log(f"key numbers of {path.name} failed: {type(error).__name__}: {error}")
        numbers = _failure("key numbers", f"{type(error).__name__}: {error}")
    title = " ".join(filter(None, (experiment.title, f"at {place(ds)}" if experiment.located else "")))
    return (f"<section><h2>{html.escape(title)} — <code>{html.escape(path.name)}</code></h2>{numbers}"
            f"{''.join(_image(f) for f in drawn.written)}{''.join(_failure(n, r) for n, r in drawn.failed)}"
            f"<details><summary>configuration</summary><pre>{html.escape(json.dumps(config_of(ds), indent=1))}</pre>"
            "</details></section>")


def write_report(run_dir: str | Path, log: Callable[[str], None] = lambda message: None) -> Path:
    """Render figures for every result (``*.nc``) in ``run_dir`` and write ``report.html``; a file
    that is not a readable result is skipped with a warning (logged and listed in the report); a
    figure that fails is noted in its section and logged, and everything else is still written."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory")
    loaded, skipped = readable_results(run_dir, log)
    if not loaded:
        raise InputError(f"{run_dir}: no readable result files (*.nc) to report on")
    has_interventions = any(ds.attrs["experiment"] == "head_intervention" for _, ds in loaded)
    sections = [_section(run_dir, path, ds, has_interventions, log) for path, ds in loaded]
    first = loaded[0][1]
    provenance = {k: str(first.attrs.get(k, "")) for k in PROVENANCE_KEYS}
    warnings = "".join(f"<li>{html.escape(message)}</li>" for message in skipped)
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>instruction-anchors report</title>"
        f"<style>{STYLE}</style></head><body><h1>instruction-anchors report</h1>"
        f"<p>Run directory: <code>{html.escape(str(run_dir))}</code></p>"
        + ('<p class="explore"><a href="explore.html">Explore each sample</a> (why did it follow the image or the text?)</p>'
           if (run_dir / "explore.html").exists() else "")
        + (f"<h2>Skipped files</h2><ul>{warnings}</ul>" if skipped else "")
        + f"<h2>Provenance</h2>{_table(list(provenance.items()))}"
        f"<p>Versions: <code>{html.escape(first.attrs.get('versions', ''))}</code></p>"
        f"{''.join(sections)}</body></html>"
    )
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out
