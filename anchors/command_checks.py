"""What the command line checks before anything heavy loads (no torch, no transformers): the
analysis options, the output path, the data folder, the lens result and the task file, and
whether the output already holds this very run. Each answers in well under 2 s, so a wrong path or
option never waits for a model (``benchmarks/cli_startup.py`` measures it).

The cheap "already complete" answer compares a digest of the command's options and the contents of
every input it reads with the one the finished result recorded (``attrs["inputs_digest"]``); when
they differ, or the result recorded none, the runner's full fingerprint decides as before.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__
from .command_options import config_from
from .datasets.capability import CapabilityItem, load_capability
from .datasets.folder import DICTIONARIES_FILE, SAMPLES_FILE, DataFolder
from .errors import InputError
from .experiments import configs
from .results.records import Experiment
from .results.netcdf import check_writable, load_result
from .results.provenance import dumps

if TYPE_CHECKING:  # xarray loads only where a result file is read
    import xarray as xr

#: what tracing a model needs beyond reading results: the ``trace`` extra
TRACE_STACK = ("torch", "torchvision", "transformers", "nnsight")


def require_trace_stack(command: str) -> None:
    """Refuse a command that loads a model where only the light install (reading results) is."""
    import importlib.util

    missing = [name for name in TRACE_STACK if importlib.util.find_spec(name) is None]
    if missing:
        raise InputError(f"anchors {command} loads a model, which needs the 'trace' extra (missing: {', '.join(missing)}):"
                         " pip install 'instruction-anchors[trace]'; plot, report and heads work without it")


@dataclass(frozen=True)
class Inputs:
    """What a command read and checked: its analysis config, the data folder, the lens result, the
    task file's records (each None where the command reads none) and the inputs' digest."""

    config: Any
    folder: DataFolder | None
    lens: xr.Dataset | None
    items: list[CapabilityItem] | None
    digest: str


def _digest(cli_config: dict, files: list[Path]) -> str:
    hasher = hashlib.sha256(f"{__version__}\n{dumps(cli_config)}".encode())
    for path in files:
        hasher.update(path.read_bytes())
    return hasher.hexdigest()[:20]


def check_inputs(record: Experiment, args: argparse.Namespace, cli_config: dict) -> Inputs:
    """Every check of ``record``'s command that needs no model, in the order a user fixes them."""
    config = config_from(args, getattr(configs, record.config))
    config.check()
    check_writable(args.out)
    files: list[Path] = []
    folder = lens = items = None
    if "data" in record.reads:
        folder = DataFolder.open(args.data)
        files += [folder.path / SAMPLES_FILE, folder.path / DICTIONARIES_FILE]
    if "lens" in record.reads:
        lens = load_result(args.lens, ["lens_profile"])
        files.append(Path(args.lens))
    if "file" in record.reads:
        items = load_capability(getattr(config, "task", record.name), args.file)[: args.limit]
        files.append(Path(args.file))
    return Inputs(config, folder, lens, items, _digest(cli_config, files))


def already_complete(out: Path, inputs: Inputs) -> bool:
    """Whether ``out`` is the finished result of this very command on these very inputs."""
    if not out.is_file():
        return False
    import xarray as xr

    try:
        with xr.open_dataset(out, engine="netcdf4") as existing:
            return existing.attrs.get("inputs_digest") == inputs.digest
    except (OSError, ValueError):
        return False
