"""One adapter per architecture family, chosen by ``config.model_type``."""

from __future__ import annotations

from typing import Any

from .base import ATTENTION_IMPLEMENTATIONS, Adapter, AdapterError, Shape, hf_module, resolve
from .gemma3 import Gemma3Adapter
from .internvl import InternVLAdapter
from .llava import LlavaAdapter
from .qwen_vl import QwenVLAdapter
from .text import TextAdapter

ADAPTERS: dict[str, type[Adapter]] = {
    model_type: adapter
    for adapter in (QwenVLAdapter, LlavaAdapter, InternVLAdapter, Gemma3Adapter, TextAdapter)
    for model_type in adapter.model_types
}

# Every registered model type has a tiny test instance (the contract tests run on each).
TINY_MODEL_TYPES = ("qwen2_5_vl", "qwen2_vl", "llava", "internvl", "gemma3", "llama", "qwen2")


def adapter_class(model_type: str) -> type[Adapter]:
    try:
        return ADAPTERS[model_type]
    except KeyError:
        raise AdapterError(
            f"no adapter for model_type {model_type!r}; supported: {', '.join(sorted(ADAPTERS))}"
        ) from None


def adapter_for(config: Any, processor: Any) -> Adapter:
    return adapter_class(config.model_type)(config, processor)


__all__ = [
    "ADAPTERS", "ATTENTION_IMPLEMENTATIONS", "Adapter", "Gemma3Adapter", "InternVLAdapter", "LlavaAdapter",
    "QwenVLAdapter", "TextAdapter", "AdapterError", "Shape", "TINY_MODEL_TYPES",
    "adapter_class", "adapter_for", "hf_module", "resolve",
]
