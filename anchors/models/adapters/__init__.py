"""Adapters: every model-specific fact the toolkit needs, derived from the model's structure
(:class:`Adapter`) plus small subclasses for families with quirks. Model-specific knowledge
lives here and nowhere else."""

from __future__ import annotations

from .base import ATTENTION_IMPLEMENTATIONS, Adapter, Norms, Shape, hf_module, resolve
from .gemma3 import Gemma3Adapter
from .mrope import MultimodalRopeAdapter
from .registry import CHECKS, QUIRKS, REFUSED, VERIFIED, adapter_class, model_table
from .structure import AdapterError, DecoderPaths, NormForm, norm_eps

__all__ = [
    "ATTENTION_IMPLEMENTATIONS", "Adapter", "CHECKS", "AdapterError", "DecoderPaths", "Gemma3Adapter", "NormForm", "Norms", "QUIRKS",
    "MultimodalRopeAdapter", "REFUSED", "Shape", "VERIFIED", "adapter_class", "hf_module", "model_table", "norm_eps", "resolve",
]
