"""LLaVA and LLaVA-NeXT (CLIP vision tower + Llama-family decoder, the same language-model paths).

LLaVA-NeXT's any-resolution processing tiles the image and inserts an image-newline feature after
every row of tiles; the processor counts those in the ``<image>`` placeholders, so the newline
features sit at image-token positions and carry the ``visual`` role with the patch features
(the role is exactly the positions the vision features replace). llava_onevision uses the same
paths but has no tiny test instance yet, so it is not registered until the contract tests cover it.
"""

from __future__ import annotations

from .base import Adapter


class LlavaAdapter(Adapter):
    family = "llava"
    model_types = ("llava", "llava_next")
