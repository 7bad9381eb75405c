"""InternVL (InternViT + Qwen2 decoder, native transformers ``internvl`` type).

The processor inserts ``<img>…</img>`` around the image context tokens itself.
"""

from __future__ import annotations

from .base import Adapter


class InternVLAdapter(Adapter):
    family = "internvl"
    model_types = ("internvl",)
