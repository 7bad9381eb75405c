"""``anchors explore``: a self-contained interactive page to find out why one sample followed the
image or the text.

``explore.html`` and the ``explore/`` folder beside it open from disk, offline: Plotly's bundled
``plotly.min.js`` draws the panels; the index of samples, the population's bands and each chunk
of samples are ``<script>`` files (browsers block ``fetch`` on ``file://``), a chunk loaded only when
one of its samples is shown, so a paper-size run opens as fast as a small one. Every text that comes
from data travels as JSON data and is shown as text (``textContent``), never parsed as markup.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError
from ..prompts.roles import ROLES
from ..results.schema import config_of
from .explorer_data import (BAND, Sources, on_samples, find_sources, head_change, intervention_settings, lens_series,
                            population)

CHUNK = 64  # samples per chunk file
THUMBNAIL = 320  # pixels, the longer side of each sample's embedded image
PAGE = resources.files("anchors.report") / "page"


def _nested(text: np.ndarray) -> str:
    return "[" + ",".join(_nested(row) if text.ndim > 1 else row for row in text) + "]"


def _numbers(values: np.ndarray) -> str:
    """A float array as nested JSON lists: 6 significant digits, NaN and infinities as null."""
    text = np.char.mod("%.6g", values.reshape(-1)).astype(object)
    text[~np.isfinite(values.reshape(-1))] = "null"
    return _nested(text.reshape(values.shape)) if values.ndim else str(text[0])


def to_json(value: Any) -> str:
    """``value`` (dicts, lists, arrays, numbers, strings) as JSON text: float arrays as :func:`_numbers`
    writes them (vectorised: a paper-size run has millions), NaN as null everywhere."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        try:  # plain data (a prompt's token runs) in one call
            return json.dumps(value, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError):  # arrays or NaN inside
            return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, (np.ndarray, np.floating)) and np.asarray(value).dtype.kind == "f":
        return _numbers(np.asarray(value))
    if isinstance(value, (np.ndarray, np.generic)):
        return to_json(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "null"
    return json.dumps(value, ensure_ascii=False)


def script(call: str, payload: Any) -> str:
    r"""``call(payload);`` with ``<``, ``>``, ``&`` and line separators escaped inside the JSON, so no data
    can end a script or start markup.

    >>> script("f", {"a": np.array([1 / 3, np.nan]), "b": "</script>"})
    'f({"a":[0.333333,null],"b":"\\u003c/script\\u003e"});\n'"""
    text = to_json(payload)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return f"{call}({text});\n"


def _thumbnail(source: str, target: Path) -> bool:
    from PIL import Image  # matplotlib's dependency: no extra install

    try:
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL, THUMBNAIL))
            image.save(target)
        return True
    except OSError:
        return False


def _detail(sources: Sources, order: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-sample arrays (sample first) of every panel the results allow."""
    out: dict[str, np.ndarray] = {}
    if sources.lens is not None:
        for name, values in lens_series(sources.lens).items():
            out[f"lens:{name}"] = on_samples(values.transpose("sample", "layer"), order)
        if "head_attribution" in sources.lens:
            out["heads"] = on_samples(sources.lens.head_attribution.transpose("sample", "layer", "head"), order)
        out["final_margin"] = on_samples(sources.lens.final_margin, order)
    if sources.knockout is not None:
        main = config_of(sources.knockout)["main_window"]
        out["knockout"] = on_samples(sources.knockout.nssd.sel(window=main).transpose("sample", "pathway", "layer"), order)
    for stem, ds in sources.interventions:
        out[f"interventions:{stem}"] = on_samples(intervention_settings(ds)[1], order)
        out[f"change:{stem}"] = on_samples(head_change(ds), order)
    return out


def _meta(sources: Sources, detail: dict[str, np.ndarray]) -> dict[str, Any]:
    meta: dict[str, Any] = {"roles": list(ROLES), "band": list(BAND), "lens": [], "interventions": []}
    first = next(ds for ds in (sources.lens, sources.knockout, *(d for _, d in sources.interventions)) if ds is not None)
    meta["model"] = str(first.attrs.get("model", ""))
    if sources.lens is not None:
        meta["lens"] = [name.split(":", 1)[1] for name in detail if name.startswith("lens:")]
        meta["layers"] = sources.lens.layer.values.tolist()
        meta["heads"] = sources.lens["head"].values.tolist() if "heads" in detail else []
    if sources.knockout is not None:
        meta["pathways"] = [str(p) for p in sources.knockout.pathway.values]
        meta["knockout_layers"] = sources.knockout.layer.values.tolist()
        meta["window"] = config_of(sources.knockout)["main_window"]
    for stem, ds in sources.interventions:
        labels, _ = intervention_settings(ds)
        ranking = {m: ds.ranking.sel(modality=m).values.tolist() for m in ds.modality.values} if "ranking" in ds else {}
        meta["interventions"].append({"name": stem, "settings": labels, "ranking": ranking,
                                      "heads_per_layer": int(ds.sizes.get("head", 0))})
    return meta


def collect(sources: Sources) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The index (meta, population, one row per sample) and each sample's detail, in order."""
    order = sources.order
    detail = _detail(sources, order)
    meta = _meta(sources, detail)
    instructed = np.array([sources.sample_fields[s].get("instructed", "") for s in order])
    series = {name.split(":", 1)[1]: values for name, values in detail.items() if name.startswith("lens:")}
    meta["population"] = population(series, instructed)
    if "heads" in detail:
        meta["head_mean"] = {m: np.nanmean(detail["heads"][instructed == m], axis=0)
                             for m in set(instructed.tolist()) if m}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # a sample the knockout did not run: NaN
        knockout_max = np.nanmax(np.abs(detail["knockout"]), axis=(1, 2)) if "knockout" in detail else None
    first_change = next((values for name, values in detail.items() if name.startswith("change:")), None)
    rows, samples = [], []
    for i, sid in enumerate(order):
        fields = sources.sample_fields[sid]
        extra = sources.samples.get(sid, {})
        rows.append({"id": sid, **{k: fields.get(k) for k in ("task", "instructed", "style", "answer", "followed")},
                     "variant": extra.get("variant", ""),
                     "final_margin": detail["final_margin"][i] if "final_margin" in detail else None,
                     "knockout_max": knockout_max[i] if knockout_max is not None else None,
                     "head_change": first_change[i] if first_change is not None else None,
                     "chunk": i // CHUNK})
        samples.append({"tokens": extra.get("tokens", []),
                        "compliant_forms": extra.get("compliant_forms", []),
                        "competing_forms": extra.get("competing_forms", []), "image_source": extra.get("image", ""),
                        **{k: extra[k] for k in ("image_size", "region", "boxes", "in_region") if k in extra},
                        **{name: values[i] for name, values in detail.items() if not name.startswith("change:")}})
    return {"meta": meta, "rows": rows, "chunk_size": CHUNK}, samples


def write_explorer(run_dir: str | Path, log: Callable[[str], None] = lambda message: None) -> Path:
    """Write ``explore.html`` and its ``explore/`` folder into ``run_dir`` from the results there
    (lens, knockout and head-intervention profiles; panels whose result is missing are left out)
    and return the page's path. The folder is written beside and swapped in whole.

    >>> lens = anchors.run(anchors.LensProfile(heads=False), "organism", samples, out=tmp / "run" / "lens.nc")
    >>> page = anchors.write_explorer(tmp / "run")
    >>> page.name, sorted(p.name for p in (page.parent / "explore").glob("*.js"))
    ('explore.html', ['app.js', 'chunk-0000.js', 'index.js', 'plotly.min.js'])"""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"{run_dir} is not a directory")
    sources = find_sources(run_dir, log)
    if not sources.order:
        raise InputError(f"{run_dir}: no lens, knockout or head-intervention result (*.nc) to explore")
    index, samples = collect(sources)
    staging = run_dir / "explore.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "images").mkdir(parents=True)
    try:
        _write_files(staging, index, samples, log)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target = run_dir / "explore"
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    page = run_dir / "explore.html"
    page.write_text((PAGE / "explore.html").read_text(encoding="utf-8"), encoding="utf-8")
    log(f"explorer: {len(samples)} samples in {math.ceil(len(samples) / CHUNK)} chunks")
    return page


def _write_files(staging: Path, index: dict[str, Any], samples: list[dict[str, Any]], log: Callable[[str], None]) -> None:
    thumbnails: dict[str, str | None] = {}  # one per image file: samples share their record's image
    for i, sample in enumerate(samples):
        source = sample.pop("image_source")
        if source and source not in thumbnails:
            name = f"images/{len(thumbnails):05d}.png"
            thumbnails[source] = name if _thumbnail(source, staging / name) else None
            if thumbnails[source] is None:
                log(f"sample {index['rows'][i]['id']}: image {source} could not be read; shown without it")
        sample["image"] = thumbnails.get(source)
    for start in range(0, len(samples), CHUNK):
        (staging / f"chunk-{start // CHUNK:04d}.js").write_text(
            script("ANCHORS.chunk", {"chunk": start // CHUNK, "samples": samples[start:start + CHUNK]}), encoding="utf-8")
    (staging / "index.js").write_text(script("ANCHORS.index", index), encoding="utf-8")
    shutil.copyfile(resources.files("plotly") / "package_data" / "plotly.min.js", staging / "plotly.min.js")
    for name in ("app.js", "app.css"):
        shutil.copyfile(PAGE / name, staging / name)
