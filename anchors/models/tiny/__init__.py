"""Tiny random-weight instances of every registered architecture, built locally (no hub).

Each is saved to a folder (safetensors + processor files) and loaded back through
:func:`anchors.models.load_checkpoint`, so tests exercise the same loading path users take. The list
of model types is the builders'; a test keeps it equal to the adapters' verified types.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from ...errors import InputError
from ..loading import LoadedModel
from .configs import BUILDERS

TINY_MODEL_TYPES: tuple[str, ...] = tuple(BUILDERS)


def tiny_config(model_type: str, **sizes: Any) -> tuple[Any, Any]:
    """``(config, processor)`` of a tiny ``model_type``; ``sizes`` override the builder's defaults."""
    if model_type not in TINY_MODEL_TYPES:
        raise InputError(f"no tiny model {model_type!r}; choose from {', '.join(TINY_MODEL_TYPES)}")
    return BUILDERS[model_type](model_type, **sizes)


def build_tiny(model_type: str, folder: str | Path, seed: int = 0, **sizes: Any) -> Path:
    """Write a tiny ``model_type`` checkpoint with its processor to ``folder``."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    config, processor = tiny_config(model_type, **sizes)
    torch.manual_seed(seed)
    auto = AutoModelForImageTextToText if getattr(config, "vision_config", None) is not None else AutoModelForCausalLM
    model = auto.from_config(config)
    with torch.no_grad():  # matrices from_config leaves at zero (Gemma 3's image projection: the image
        for parameter in model.parameters():  # would never reach the decoder) are drawn like the rest
            if parameter.dim() >= 2 and not parameter.any():
                parameter.normal_(0.0, 0.02)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


_CACHE: dict[tuple, LoadedModel] = {}
_FOLDERS: dict[str, Path] = {}


def tiny_folder(model_type: str) -> Path:
    """The folder of the process's tiny ``model_type`` checkpoint (built on first use, seed 0)."""
    if model_type not in _FOLDERS:
        if model_type not in TINY_MODEL_TYPES:
            raise InputError(f"no tiny model {model_type!r}; choose from {', '.join(TINY_MODEL_TYPES)}")
        _FOLDERS[model_type] = build_tiny(model_type, tempfile.mkdtemp(prefix=f"anchors-tiny-{model_type}-"))
    return _FOLDERS[model_type]


def tiny_model(model_type: str, attn_implementation: str = "eager") -> LoadedModel:
    """A cached tiny model of ``model_type`` (built once per process, loaded per attention kind),
    loaded as ``--model tiny:TYPE`` is."""
    from ..spec import ModelSpec

    key = (model_type, attn_implementation)
    if key not in _CACHE:
        _CACHE[key] = ModelSpec(f"tiny:{model_type}", attn_implementation=attn_implementation).load()
    return _CACHE[key]
