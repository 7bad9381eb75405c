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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import xarray as xr

from ..datasets.folder import DataFolder
from ..datasets.subset import Subset
from ..errors import InputError
from ..experiments.base import Advance, Analysis, Resolved
from ..models.loading import LoadedModel
from ..models.spec import ModelSpec, adapter_of, as_spec, loaded_of
from ..prompts.prompt import dictionary_hash
from ..results.netcdf import check_writable, load
from ..results.provenance import dumps, portable_path, write_result
from ..results.variables import describe
from ..tracer.batching import check_unique
from ..tracer.canary import check_edits_reach
from ..tracer.encode import check_context
from ..tracer.token_table import samples_group
from .batches import Retry, batch_result, keep_part
from .in_flight import in_flight as in_flight_batches
from .merge import merge_parts
from .regions import mentions_region, region_items

Progress = Callable[[str, int, str], AbstractContextManager[Advance]]


class ResumeConflict(InputError):
    """An existing output (or partial output) was made with another configuration or data."""


@contextmanager
def no_progress(description: str, total: int, unit: str) -> Iterator[Advance]:
    yield lambda n: None


def _fingerprint(analysis: Analysis, config: dict, items: Sequence[Any], batch_size: int) -> str:
    identity = {"experiment": analysis.experiment, "config": config, "identity": analysis.identity(),
                "batch_size": batch_size, "items": [item.key() for item in items]}
    if mentions_region(config):  # only a region analysis depends on the boxes
        identity["regions"] = [p.region for item in items for p in analysis.prompts(item)]
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


@dataclass(frozen=True)
class Plan:
    """A checked sweep, ready to compute: the analysis and its plan resolved against the model
    (``resolved``; ``config`` is its JSON form), its batches, where finished ones go (``parts``;
    None without an output file) and what identifies it."""

    analysis: Analysis
    resolved: Resolved
    model: ModelSpec | LoadedModel
    items: list[Any]
    config: dict
    stamp: str
    batch_size: int
    out: Path | None
    parts: Path | None
    done: xr.Dataset | None = None
    excluded: tuple[tuple[str, str], ...] = ()  # (sample id, why) left out of a region analysis

    def steps(self, index: int) -> int:
        """How many times batch ``index`` advances the progress bar."""
        return self.analysis.steps(self.resolved, self.chunks[index])

    @property
    def chunks(self) -> list[list[Any]]:
        return [self.items[i: i + self.batch_size] for i in range(0, len(self.items), self.batch_size)]

    def part_path(self, index: int) -> Path | None:
        return self.parts / f"batch-{index:05d}.nc" if self.parts is not None else None

    def missing(self) -> list[int]:
        """The batches not yet written (all of them without an output file)."""
        return [i for i in range(len(self.chunks)) if self.part_path(i) is None or not self.part_path(i).exists()]


def plan(analysis: Analysis, model: ModelSpec | LoadedModel | str, samples: Any, *, out: str | Path | None = None,
         batch_size: int = 8, overwrite: bool = False, log: Callable[[str], None] = lambda message: None) -> Plan:
    """Check everything that needs no weights (output, config, samples, prompt lengths; for a
    remote model, what the server can run) and prepare the parts folder; ``plan.done`` holds the
    result when ``out`` is already complete."""
    if batch_size < 1:
        raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
    analysis.config.check()
    model = as_spec(model)
    out = check_writable(out) if out is not None else None
    if model.remote:
        analysis.check_remote()
    adapter = adapter_of(model)
    items, excluded = analysis.items(samples), []
    if items and mentions_region(analysis.config):
        items, excluded = region_items(analysis, adapter, items)
        for sample_id, why in excluded:
            log(f"left out of the region analysis: sample {sample_id}: {why}")
    if not items:
        raise InputError("no samples to run" + (f": all {len(excluded)} left out of the region analysis" if excluded else ""))
    resolved = analysis.resolve(adapter, items)
    config = resolved.as_config()
    for note in resolved.notes:
        log(f"note: {note}")
    check_unique(items)
    stamp = _fingerprint(analysis, config, items, batch_size)
    parts_dir = out.with_name(out.name + ".parts") if out is not None else None
    sweep = Plan(analysis, resolved, model, items, config, stamp, batch_size, out, parts_dir, excluded=tuple(excluded))
    if out is not None and not overwrite:
        done = _finished(out, parts_dir, stamp)
        if done is not None:
            log(f"{out} is already complete")
            return replace(sweep, done=done)
    check_context(adapter, [prompt for item in items for prompt in analysis.prompts(item)])
    if parts_dir is not None:
        if overwrite:
            out.unlink(missing_ok=True)
            shutil.rmtree(parts_dir, ignore_errors=True)
        parts_dir.mkdir(parents=True, exist_ok=True)
        (parts_dir / "sweep.json").write_text(json.dumps({"fingerprint": stamp, "config": config}, default=str))
    return sweep


def finish(sweep: Plan, parts: Sequence[xr.Dataset], *, cli_config: dict | None = None,
           attrs: dict | None = None) -> xr.Dataset:
    """Merge the batches (in order), compute the aggregates, stamp provenance (the model's, as
    recorded in the first part) and save the result once; the parts folder is then removed."""
    analysis, items = sweep.analysis, sweep.items
    model = json.loads(parts[0].attrs["model_provenance"])
    merged = merge_parts([part.assign_attrs(model_provenance=None) for part in parts])
    merged.attrs.pop("model_provenance", None)
    result = describe(analysis.finalise(sweep.resolved, merged))
    traced = [s for item in items for s in analysis.samples_of(item)]
    extra = {"sweep_fingerprint": sweep.stamp, **(attrs or {})}
    if sweep.excluded:
        extra["excluded_samples"] = json.dumps(dict(sweep.excluded))
    if cli_config is not None:
        extra["cli_config"] = dumps(cli_config)
    result = write_result(result, sweep.out, model, analysis.experiment, sweep.config, n_samples=len(items),
                          dictionary_hash=dictionary_hash(traced), batch_size=sweep.batch_size, attrs=extra,
                          samples=samples_group(adapter_of(sweep.model), traced, result, sweep.out))
    if sweep.out is not None:
        shutil.rmtree(sweep.parts)
    return result


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
    retry: Retry | None = None,
    in_flight: int = 1,
) -> xr.Dataset:
    """Run ``analysis`` on ``samples`` (what the analysis takes: traced samples, or variants for
    the position controls) and return the result; with ``out``, resumably into that NetCDF file.

    ``model`` may be a loaded model, a :class:`~anchors.models.spec.ModelSpec` or a spec string
    (``organism``, ``tiny:TYPE``, a Hub id or folder); a spec is loaded only after the output, the
    config and every prompt's length have been checked. ``progress(description, total, unit)``
    is a context manager yielding ``advance(n)``, called with the analysis's own step count.
    ``attrs`` are added to the result's (e.g. how the samples were drawn from a data folder).
    A remote model's failed batch is retried per ``retry`` (:class:`~anchors.runner.batches.Retry`),
    then fails naming it. On a remote model, up to ``in_flight`` batches are sent at once
    (``anchors.runner.in_flight``), each written as it finishes.

    >>> out = tmp / "lens.nc"
    >>> lens = anchors.run(anchors.LensProfile(heads=False), "organism", samples, out=out)
    >>> anchors.run(anchors.LensProfile(heads=False), "organism", samples, out=out).identical(lens)  # resumed: complete
    True
    """
    if in_flight > 1 and not as_spec(model).remote:  # before plan() encodes every prompt
        raise InputError(f"in_flight={in_flight} (--in-flight) overlaps the waits of remote batches; this model runs "
                         "here, where batches run one after another: drop the option or add --remote")
    sweep = plan(analysis, model, samples, out=out, batch_size=batch_size, overwrite=overwrite, log=log)
    if sweep.done is not None:
        return sweep.done
    loaded = loaded_of(sweep.model)
    if loaded.remote and analysis.edits:
        check_edits_reach(loaded, next(s for item in sweep.items for s in analysis.samples_of(item)))
    chunks = sweep.chunks
    parts: dict[int, xr.Dataset] = {}
    missing = sweep.missing()
    with progress(analysis.experiment, sum(sweep.steps(i) for i in range(len(chunks))), analysis.unit) as advance:
        for index in range(len(chunks)):
            if index not in missing:
                log(f"batch {index + 1}/{len(chunks)}: already done, skipped")
                advance(sweep.steps(index))
                parts[index] = load(sweep.part_path(index))

        def compute(index: int) -> xr.Dataset:
            return batch_result(sweep, loaded, index, advance, retry=retry, log=log)

        for index, part in in_flight_batches(compute, missing, in_flight):
            parts[index] = keep_part(sweep, loaded, index, part)
            log(f"batch {index + 1}/{len(chunks)}: done")
    parts = [parts[index] for index in range(len(chunks))]
    return finish(sweep, parts, cli_config=cli_config, attrs=attrs)


def run_folder(analysis: Analysis, model: ModelSpec | LoadedModel | str, data: str | Path | DataFolder, *,
               limit: int | None = None, fraction: float | None = None, seed: int = 0,
               out: str | Path | None = None, log: Callable[[str], None] = lambda m: None,
               engine: Callable[..., xr.Dataset] | None = None, attrs: dict | None = None,
               **options: Any) -> xr.Dataset:
    """:func:`run` on a data folder made by ``anchors data build`` (its path, or the folder already
    opened): the folder, the output and the model's config and tokenizer are checked before any
    weights load. ``fraction`` and ``seed`` draw a stratified random subset
    (:class:`~anchors.datasets.subset.Subset`), ``limit`` keeps the first N; both are recorded in
    the result's attrs, beside ``attrs`` and the folder (``data_folder``: relative to the result's
    folder when inside it, so both can move together; see :func:`~anchors.results.provenance.data_folder_of`). ``engine`` computes the batches (default: :func:`run`;
    e.g. :func:`~anchors.backends.ray_sweep.run_on_ray`).

    >>> ko = anchors.run_folder(anchors.KnockoutProfile(windows=(1,), layers=(0,)), "organism", data, limit=2)
    >>> ko.sizes["sample"], ko.attrs["limit"], anchors.data_folder_of(ko) == data
    (2, 2, True)"""
    subset = Subset(limit, fraction, seed)
    if out is not None:
        check_writable(out)
    folder = data if isinstance(data, DataFolder) else DataFolder.open(data)
    model = as_spec(model)
    samples = analysis.from_folder(folder, adapter_of(model).tokenizer, subset, log)
    source = {"data_folder": portable_path(folder.path, Path(out).parent if out is not None else None)}
    return (engine or run)(analysis, model, samples, out=out, log=log,
                           attrs={**source, **subset.attrs(), **(attrs or {})}, **options)
