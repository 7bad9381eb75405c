"""Decoders with 3-D (time, height, width) rotary positions: Qwen2-VL, Qwen2.5-VL (the paper's
primary architecture) and GLM-4V. Their processors must be asked for ``mm_token_type_ids``."""

from __future__ import annotations

from typing import Any

from .base import Adapter


class MultimodalRopeAdapter(Adapter):
    family = "mrope"

    def processor_kwargs(self) -> dict[str, Any]:
        # Without mm_token_type_ids the 3-D (t, h, w) rotary positions silently fall back to 1-D.
        return {"return_mm_token_type_ids": True}
