"""instruction-anchors: dissect how multimodal LLMs arbitrate between modalities under instructions.

The public names below are imported on first use, so ``import anchors`` stays light (plotting
saved results never loads torch).
"""

from __future__ import annotations

from importlib import import_module

from .lazy import lazy_names, listing
# Eager (light: no xarray until a file is read): nnsight gives every object a ``save`` attribute, so a
# lazily exported ``save`` would resolve to nnsight's.
from .results.netcdf import load, load_group, save

__version__ = "0.1.0"

_HOMES = {
    "rank_heads": "experiments", "RECORDS": "results.records", "record": "results.records",
    "AnchorsError": "errors", "InputError": "errors",
    "Prompt": "prompts", "PromptError": "prompts", "TracedSample": "prompts", "ROLES": "prompts",
    "Adapter": "models", "AdapterError": "models", "LoadedModel": "models", "ModelSpec": "models", "load_model": "models",
    "EncodedBatch": "tracer", "encode_batch": "tracer", "trace_batch": "tracer", "generate_batch": "tracer",
    "ModelView": "tracer", "view": "tracer", "POINTS": "tracer", "token_table": "tracer",
    "write_explorer": "report.explorer", "data_folder_of": "results.provenance",
    "Knockout": "interventions", "HeadScale": "interventions",
    "run": "runner", "run_folder": "runner", "dry_run": "runner", "DryRun": "runner",
}


def _experiment_names() -> dict[str, str]:
    """Every experiment record's analysis and config class, exported from :mod:`anchors.experiments`
    (the records are torch-free data, read by name like every name here)."""
    RECORDS = import_module(".results.records", __name__).RECORDS
    return {name: "experiments" for r in RECORDS if r.analysis for name in (r.analysis[1], r.config)}


_HOMES.update(_experiment_names())
__all__ = sorted(_HOMES) + ["__version__", "load", "load_group", "save"]


__getattr__ = lazy_names(__name__, _HOMES)
__doc__ = f"{__doc__}\nPublic names (``anchors.NAME``), by the module they live in:\n\n{listing(_HOMES)}\n"


def __dir__() -> list[str]:
    return __all__
