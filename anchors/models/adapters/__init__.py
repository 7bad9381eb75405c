"""One adapter per architecture family, chosen by ``config.model_type``: module paths, sizes,
image tokens and chat formatting. Model-specific knowledge lives here and nowhere else."""

from __future__ import annotations

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


def adapter_class(model_type: str) -> type[Adapter]:
    try:
        return ADAPTERS[model_type]
    except KeyError:
        raise AdapterError(
            f"no adapter for model_type {model_type!r}; supported: {', '.join(sorted(ADAPTERS))}"
        ) from None


__all__ = [
    "ADAPTERS", "ATTENTION_IMPLEMENTATIONS", "Adapter", "AdapterError", "Gemma3Adapter", "InternVLAdapter",
    "LlavaAdapter", "QwenVLAdapter", "Shape", "TextAdapter", "adapter_class", "hf_module", "resolve",
]
