"""LLaVA (CLIP vision tower + Llama-family decoder).

llava_next and llava_onevision use the same language-model paths, but their any-resolution image
processing has no tiny test instance yet, so they are not registered until the contract tests
cover them.
"""

from __future__ import annotations

from .base import Adapter


class LlavaAdapter(Adapter):
    family = "llava"
    model_types = ("llava",)
