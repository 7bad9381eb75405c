"""instruction-anchors: dissect how multimodal LLMs arbitrate between modalities under instructions.

The public names below are imported on first use, so ``import anchors`` stays light (plotting
saved results never loads torch).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_HOMES = {
    "AnchorsError": "errors", "InputError": "errors",
    "Prompt": "prompts", "PromptError": "prompts", "TracedSample": "prompts", "ROLES": "prompts",
    "Adapter": "models", "AdapterError": "models", "LoadedModel": "models", "ModelSpec": "models", "load_model": "models",
    "EncodedBatch": "tracer", "encode_batch": "tracer", "trace_batch": "tracer", "generate_batch": "tracer",
    "Knockout": "interventions", "HeadScale": "interventions",
    "KnockoutProfile": "experiments", "LensProfile": "experiments", "HeadIntervention": "experiments",
    "PositionControls": "experiments", "rank_heads": "experiments",
    "run": "runner", "run_folder": "runner", "load": "results", "save": "results",
}
__all__ = sorted(_HOMES) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'anchors' has no attribute {name!r}")
    return getattr(import_module(f".{_HOMES[name]}", __name__), name)
