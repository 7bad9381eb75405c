"""Qwen2-VL and Qwen2.5-VL (the paper's primary architecture)."""

from __future__ import annotations

from typing import Any

from .base import Adapter


class QwenVLAdapter(Adapter):
    family = "qwen_vl"
    model_types = ("qwen2_5_vl", "qwen2_vl")

    def processor_kwargs(self) -> dict[str, Any]:
        # Without mm_token_type_ids the 3-D (t, h, w) rotary positions silently fall back to 1-D.
        return {"return_mm_token_type_ids": True}
