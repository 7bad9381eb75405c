"""Tiny random-weight instances of every supported architecture, built locally (no hub).

Each is saved to a folder (safetensors + processor files) and loaded back through
:func:`anchors.load_model`, so tests exercise the same loading path users take.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from .adapters import TINY_MODEL_TYPES, adapter_class
from .loading import LoadedModel, load_model


def build_tiny(model_type: str, folder: str | Path, seed: int = 0, **sizes: int) -> Path:
    """Write a tiny ``model_type`` checkpoint with its processor to ``folder``."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    cls = adapter_class(model_type)
    config, processor = cls.tiny(model_type, **sizes)
    torch.manual_seed(seed)
    auto = AutoModelForImageTextToText if cls.multimodal else AutoModelForCausalLM
    model = auto.from_config(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


_CACHE: dict[tuple, LoadedModel] = {}
_FOLDERS: dict[str, Path] = {}


def tiny_model(model_type: str, attn_implementation: str = "eager") -> LoadedModel:
    """A cached tiny model of ``model_type`` (built once per process, loaded per attention kind)."""
    if model_type not in TINY_MODEL_TYPES:
        raise ValueError(f"no tiny instance for {model_type!r}; available: {', '.join(TINY_MODEL_TYPES)}")
    key = (model_type, attn_implementation)
    if key not in _CACHE:
        if model_type not in _FOLDERS:
            _FOLDERS[model_type] = build_tiny(model_type, tempfile.mkdtemp(prefix=f"anchors-tiny-{model_type}-"))
        loaded = load_model(str(_FOLDERS[model_type]), attn_implementation=attn_implementation)
        loaded.provenance["model"] = f"tiny:{model_type}"  # the folder is a temporary path; the seed fixes the weights
        _CACHE[key] = loaded
    return _CACHE[key]
