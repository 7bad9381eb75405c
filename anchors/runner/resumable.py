"""The one way every analysis runs: validate everything that needs no weights, load the model,
run consecutive batches with progress, write each finished batch atomically (``OUT.parts/``), then
merge, compute the aggregates, stamp provenance and save the result once.

Re-running the same analysis with the same output skips finished batches; the merged result equals
an uninterrupted run. An output or partial run made with another configuration or data is refused
unless ``overwrite``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import xarray as xr

from ..datasets.folder import DataFolder
from ..datasets.subset import Subset
from ..errors import InputError
from ..experiments.base import Advance, Analysis
from ..models.loading import LoadedModel
from ..models.spec import ModelSpec, adapter_of, as_spec, loaded_of
from ..prompts.prompt import dictionary_hash
from ..results.netcdf import check_writable, load, save
from ..results.provenance import dumps, provenance
from ..results.variables import describe
from ..tracer.batching import check_unique
from ..tracer.encode import check_context

Progress = Callable[[str, int, str], AbstractContextManager[Advance]]


class ResumeConflict(InputError):
    """An existing output (or partial output) was made with another configuration or data."""


@contextmanager
def no_progress(description: str, total: int, unit: str) -> Iterator[Advance]:
    yield lambda n: None


def _variable_width_strings(part: xr.Dataset) -> xr.Dataset:
    """Fixed-width strings as objects: concatenating ``<U3`` ids with ``<U4`` ones would otherwise
    truncate the longer ids to the first part's width."""
    wide = {name: part[name].astype(object) for name in part.variables if part[name].dtype.kind == "U"}
    coords = {name: value for name, value in wide.items() if name in part.coords}
    return part.assign_coords(coords).assign({name: value for name, value in wide.items() if name not in coords})


def _merge(parts: Sequence[xr.Dataset]) -> xr.Dataset:
    parts = [_variable_width_strings(part) for part in parts]
    with_sample = [name for name in parts[0].data_vars if "sample" in parts[0][name].dims]
    return xr.concat(parts, dim="sample", data_vars=with_sample, coords="minimal", compat="override",
                     combine_attrs="override")


def _fingerprint(analysis: Analysis, config: dict, items: Sequence[Any], batch_size: int) -> str:
    identity = {"experiment": analysis.experiment, "config": config, "identity": analysis.identity(),
                "batch_size": batch_size, "items": [item.key() for item in items]}
    return hashlib.sha256(dumps(identity).encode()).hexdigest()[:20]


def _finished(out: Path, parts_dir: Path, stamp: str) -> xr.Dataset | None:
    """The finished result of this very run, if ``out`` holds it; refuses an output or a partial
    run made with another configuration or data."""
    if out.exists():
        existing = load(out)
        if existing.attrs.get("sweep_fingerprint") != stamp:
            raise ResumeConflict(f"{out} exists and was made with another configuration or data; use --overwrite to replace it")
        return existing
    marker = parts_dir / "sweep.json"
    if parts_dir.exists() and (json.loads(marker.read_text()).get("fingerprint") if marker.exists() else None) != stamp:
        raise ResumeConflict(f"{parts_dir} holds a partial run with another configuration; use --overwrite to discard it")
    return None


def run(
    analysis: Analysis,
    model: ModelSpec | LoadedModel | str,
    samples: Any,
    *,
    out: str | Path | None = None,
    batch_size: int = 8,
    overwrite: bool = False,
    progress: Progress = no_progress,
    log: Callable[[str], None] = lambda message: None,
    cli_config: dict | None = None,
    attrs: dict | None = None,
) -> xr.Dataset:
    """Run ``analysis`` on ``samples`` (what the analysis takes: traced samples, or variants for
    the position controls) and return the result; with ``out``, resumably into that NetCDF file.

    ``model`` may be a loaded model, a :class:`~anchors.models.ModelSpec` or a spec string
    (``organism``, ``tiny:TYPE``, a Hub id or folder); a spec is loaded only after the output, the
    config and every prompt's length have been checked. ``progress(description, total, unit)``
    is a context manager yielding ``advance(n)``, called with the analysis's own step count.
    ``attrs`` are added to the result's (e.g. how the samples were drawn from a data folder).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
    model = as_spec(model)
    out = check_writable(out) if out is not None else None
    adapter = adapter_of(model)
    items = analysis.items(samples)
    config = analysis.resolve(adapter)
    for note in analysis.notes:
        log(f"note: {note}")
    if not items:
        raise InputError("no samples to run")
    check_unique(items)
    stamp = _fingerprint(analysis, config, items, batch_size)
    parts_dir = out.with_name(out.name + ".parts") if out is not None else None
    if out is not None and not overwrite:
        existing = _finished(out, parts_dir, stamp)
        if existing is not None:
            log(f"{out} is already complete")
            return existing
    check_context(adapter, [prompt for item in items for prompt in analysis.prompts(item)])
    loaded = loaded_of(model)
    if parts_dir is not None:
        if overwrite:
            out.unlink(missing_ok=True)
            shutil.rmtree(parts_dir, ignore_errors=True)
        parts_dir.mkdir(parents=True, exist_ok=True)
        (parts_dir / "sweep.json").write_text(json.dumps({"fingerprint": stamp, "config": config}, default=str))
    chunks = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    parts: list[xr.Dataset] = []
    with progress(analysis.experiment, sum(analysis.steps(c) for c in chunks), analysis.unit) as advance:
        for index, chunk in enumerate(chunks):
            path = parts_dir / f"batch-{index:05d}.nc" if parts_dir is not None else None
            if path is not None and path.exists():
                log(f"batch {index + 1}/{len(chunks)}: already done, skipped")
                advance(analysis.steps(chunk))
                parts.append(load(path))
                continue
            part = analysis.run_batch(loaded, chunk, advance)
            parts.append(load(save(part, path)) if path is not None else part)
            log(f"batch {index + 1}/{len(chunks)}: done")
    result = describe(analysis.finalise(_merge(parts)))
    traced = [s for item in items for s in analysis.samples_of(item)]
    result.attrs = provenance(loaded.provenance, analysis.experiment, config, n_samples=len(items),
                              dictionary_hash=dictionary_hash(traced), batch_size=batch_size)
    result.attrs["sweep_fingerprint"] = stamp
    result.attrs.update(attrs or {})
    if cli_config is not None:
        result.attrs["cli_config"] = dumps(cli_config)
    if out is not None:
        save(result, out)
        shutil.rmtree(parts_dir)
    return result


def run_folder(analysis: Analysis, model: ModelSpec | LoadedModel | str, data: str | Path, *,
               limit: int | None = None, fraction: float | None = None, seed: int = 0,
               out: str | Path | None = None, log: Callable[[str], None] = lambda m: None,
               **options: Any) -> xr.Dataset:
    """:func:`run` on a data folder made by ``anchors data build``: the folder, the output and the
    model's config and tokenizer are checked before any weights load. ``fraction`` and ``seed``
    draw a stratified random subset (:class:`~anchors.datasets.subset.Subset`), ``limit`` keeps the
    first N; both are recorded in the result's attrs."""
    subset = Subset(limit, fraction, seed)
    if out is not None:
        check_writable(out)
    folder = DataFolder.open(data)
    model = as_spec(model)
    samples = analysis.from_folder(folder, adapter_of(model).tokenizer, subset, log)
    return run(analysis, model, samples, out=out, log=log, attrs=subset.attrs(), **options)
