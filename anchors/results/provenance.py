"""Provenance attributes every result carries: model, revision, analysis config, data, versions."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from typing import Any, Mapping

PACKAGES = ("instruction-anchors", "torch", "transformers", "nnsight", "xarray", "numpy")
# Config keys also stored as top-level attributes when scalar, for quick filtering.
SCALAR_KEYS = ("seed", "window", "top_k", "method")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def dumps(config: Mapping[str, Any]) -> str:
    """The one JSON form of a config in attrs and fingerprints."""
    return json.dumps(config, sort_keys=True, default=str)


def provenance(model: Mapping[str, str], experiment: str, config: Mapping[str, Any], *, n_samples: int,
               dictionary_hash: str, batch_size: int) -> dict[str, Any]:
    """NetCDF-safe attrs (strings and numbers only): the model's provenance (model, revision,
    adapter, attention, dtype), the experiment and its resolved config (JSON), the data (sample
    count, dictionary hash), batching, package versions and the command line."""
    attrs: dict[str, Any] = dict(model)
    attrs["model_revision"] = attrs.pop("revision")
    attrs.update(experiment=experiment, config=dumps(config), dictionary_hash=dictionary_hash, n_samples=n_samples,
                 batch_size=batch_size, versions=json.dumps(versions(), sort_keys=True), command=" ".join(sys.argv))
    for key in SCALAR_KEYS:
        if config.get(key) is not None and not isinstance(config[key], (list, tuple)):
            attrs[key] = config[key]
    return attrs
