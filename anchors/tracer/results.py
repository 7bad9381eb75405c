"""Provenance attributes and NetCDF I/O for result Datasets."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import xarray as xr

from .loading import LoadedModel
from .samples import TracedSample

PACKAGES = ("instruction-anchors", "torch", "transformers", "nnsight", "xarray", "numpy")


def dictionary_hash(samples: Sequence[TracedSample]) -> str:
    """A short hash of every sample's dictionary ids, to tell runs on different dictionaries apart."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(json.dumps([s.sample_id, list(s.compliant_ids), list(s.competing_ids)]).encode())
    return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(loaded: LoadedModel, samples: Sequence[TracedSample], experiment: str, config: dict[str, Any]) -> dict[str, Any]:
    """NetCDF-safe attrs (strings and numbers only): model, revision, adapter, attention, dtype,
    the experiment's resolved config (JSON), dictionary hash, package versions, command line."""
    attrs: dict[str, Any] = dict(loaded.provenance)
    attrs["model_revision"] = attrs.pop("revision")
    attrs.update(
        experiment=experiment,
        config=json.dumps(config, sort_keys=True, default=str),
        dictionary_hash=dictionary_hash(samples),
        n_samples=len(samples),
        versions=json.dumps(versions(), sort_keys=True),
        command=" ".join(sys.argv),
    )
    for key in ("seed", "window", "top_k"):
        if key in config and config[key] is not None and not isinstance(config[key], (list, tuple)):
            attrs[key] = config[key]
    return attrs


def save(dataset: xr.Dataset, path: str | Path) -> Path:
    """Write with the netcdf4 engine through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    dataset.to_netcdf(temporary, engine="netcdf4")
    os.replace(temporary, path)
    return path


def load(path: str | Path) -> xr.Dataset:
    """Load a result fully into memory (the file is closed afterwards)."""
    with xr.open_dataset(path, engine="netcdf4") as dataset:
        return dataset.load()
