"""Provenance attributes every result carries (model, revision, analysis config, data, versions,
schema version) and :func:`write_result`, the one function every saved result goes through."""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .netcdf import SAMPLES_GROUP, SCHEMA_VERSION, save

if TYPE_CHECKING:
    import xarray as xr

PACKAGES = ("instruction-anchors", "torch", "transformers", "nnsight", "xarray", "numpy")
# Config keys also stored as top-level attributes when scalar, for quick filtering.
SCALAR_KEYS = ("seed", "window", "top_k", "method", "role")
# The model's provenance every result records (LoadedModel.provenance; revision as model_revision).
MODEL_KEYS = ("model", "model_revision", "model_type", "adapter", "attn_implementation", "dtype", "quantization")


def portable_path(path: str | Path, base: str | Path | None) -> str:
    """``path`` as a data folder or a result records it: relative to ``base`` when inside it (so the
    folder can be moved), else absolute.

    >>> portable_path(tmp / "data" / "images" / "a.png", tmp / "data"), portable_path("/x/a.png", None)
    ('images/a.png', '/x/a.png')"""
    absolute = Path(path).resolve()
    if base is not None and absolute.is_relative_to(Path(base).resolve()):
        return absolute.relative_to(Path(base).resolve()).as_posix()
    return str(absolute)


def data_folder_of(result: xr.Dataset | str | Path) -> Path | None:
    """The data folder a result was computed on (``attrs["data_folder"]``, resolved against the
    result file's folder when recorded relative to it), or None for samples given in Python; with
    it, ``DataFolder.open(folder).prompt(sample_id)`` gives any sample's prompt and image.

    >>> import xarray as xr
    >>> anchors.data_folder_of(xr.Dataset(attrs={"data_folder": "/x/data"}))
    PosixPath('/x/data')"""
    import xarray as xr

    path = Path(result) if isinstance(result, (str, Path)) else None
    if path is not None:
        with xr.open_dataset(path) as opened:
            recorded = opened.attrs.get("data_folder")
    else:
        recorded = result.attrs.get("data_folder")
        source = result.encoding.get("source")
        path = Path(source) if source else None
    if not recorded:
        return None
    folder = Path(recorded)
    if not folder.is_absolute() and path is not None:
        folder = path.parent / folder
    return folder


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
                 batch_size=batch_size, versions=json.dumps(versions(), sort_keys=True), command=" ".join(sys.argv),
                 schema_version=SCHEMA_VERSION)
    for key in SCALAR_KEYS:
        if config.get(key) is not None and not isinstance(config[key], (list, tuple)):
            attrs[key] = config[key]
    return attrs


def model_of(result: xr.Dataset) -> dict[str, str]:
    """The model provenance recorded in ``result`` (as :func:`~anchors.results.provenance.provenance` takes it), e.g. to stamp
    a result derived from it."""
    model = {key: str(result.attrs.get(key, "")) for key in MODEL_KEYS if key != "model_revision"}
    return model | {"revision": str(result.attrs.get("model_revision", ""))} | (
        {"backend": result.attrs["backend"]} if "backend" in result.attrs else {})


def write_result(dataset: xr.Dataset, path: str | Path | None, model: Mapping[str, str], experiment: str,
                 config: Mapping[str, Any], *, n_samples: int, dictionary_hash: str, batch_size: int,
                 attrs: Mapping[str, Any] | None = None, samples: xr.Dataset | None = None) -> xr.Dataset:
    """``dataset`` with every result's provenance (:func:`~anchors.results.provenance.provenance`, then ``attrs``), saved
    atomically to ``path`` when one is given: the one writer of results (the runner's finish, the
    head ranking of ``anchors heads --out``, the organism's agreement check). ``samples`` (each
    sample's readable tokens, roles and image: :func:`~anchors.tracer.token_table.token_table`) is
    saved as the file's ``samples`` group (:func:`~anchors.results.netcdf.load_group`)."""
    result = dataset.copy()
    result.attrs = provenance(model, experiment, config, n_samples=n_samples, dictionary_hash=dictionary_hash,
                              batch_size=batch_size) | dict(attrs or {})
    if path is not None:
        save(result, path, {SAMPLES_GROUP: samples} if samples is not None else None)
    return result
