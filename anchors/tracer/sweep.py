"""Resumable sweeps: results are written one batch at a time as they finish, each file through a
temporary name and a rename, so a crash costs only the batch in flight. Re-running the same
sweep with the same output skips finished batches; the merged result equals an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Callable, Sequence

import xarray as xr

from .results import dictionary_hash, load, save
from .samples import TracedSample


class SweepConflict(ValueError):
    """An existing output (or partial output) was made with another configuration."""


def fingerprint(config: dict, samples: Sequence[TracedSample]) -> str:
    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    digest.update(dictionary_hash(samples).encode())
    digest.update(json.dumps([s.sample_id for s in samples]).encode())
    return digest.hexdigest()[:20]


def _merge(parts: list[xr.Dataset]) -> xr.Dataset:
    with_sample = [name for name in parts[0].data_vars if "sample" in parts[0][name].dims]
    merged = xr.concat(parts, dim="sample", data_vars=with_sample, coords="minimal", compat="override",
                       combine_attrs="override")
    return merged


def run_sweep(
    experiment: Callable[[Sequence[TracedSample]], xr.Dataset],
    samples: Sequence[TracedSample],
    out: str | Path,
    *,
    batch_size: int,
    config: dict,
    overwrite: bool = False,
    finalise: Callable[[xr.Dataset], xr.Dataset] | None = None,
    log: Callable[[str], None] = lambda message: None,
    advance: Callable[[int], None] = lambda n: None,
) -> xr.Dataset:
    """Run ``experiment`` on consecutive batches of ``samples`` and merge along ``sample``.

    ``config`` (the resolved options) decides whether existing files belong to this sweep: a
    different one is refused unless ``overwrite``. ``finalise`` recomputes sample aggregates after
    merging (e.g. LDAR). ``advance(n)`` reports n more samples done, skipped batches included.
    """
    out = Path(out)
    parts_dir = out.with_name(out.name + ".parts")
    stamp = fingerprint(config, samples)
    if overwrite:
        out.unlink(missing_ok=True)
        shutil.rmtree(parts_dir, ignore_errors=True)
    if out.exists():
        existing = load(out)
        if existing.attrs.get("sweep_fingerprint") != stamp:
            raise SweepConflict(f"{out} exists and was made with another configuration or data; use --overwrite to replace it")
        log(f"{out} is already complete")
        advance(len(samples))
        return existing
    marker = parts_dir / "sweep.json"
    if parts_dir.exists():
        recorded = json.loads(marker.read_text()).get("fingerprint") if marker.exists() else None
        if recorded != stamp:
            raise SweepConflict(f"{parts_dir} holds a partial run with another configuration; use --overwrite to discard it")
    parts_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"fingerprint": stamp, "config": config}, default=str))
    batches = [samples[i : i + batch_size] for i in range(0, len(samples), batch_size)]
    for index, chunk in enumerate(batches):
        path = parts_dir / f"batch-{index:05d}.nc"
        if path.exists():
            log(f"batch {index + 1}/{len(batches)}: already done, skipped")
        else:
            save(experiment(chunk), path)
            log(f"batch {index + 1}/{len(batches)}: done")
        advance(len(chunk))
    merged = _merge([load(parts_dir / f"batch-{i:05d}.nc") for i in range(len(batches))])
    if finalise is not None:
        merged = finalise(merged)
    merged.attrs.update(n_samples=len(samples), dictionary_hash=dictionary_hash(samples),
                        config=json.dumps(config, sort_keys=True, default=str), sweep_fingerprint=stamp)
    save(merged, out)
    shutil.rmtree(parts_dir)
    return merged
