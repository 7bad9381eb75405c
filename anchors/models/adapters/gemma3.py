"""Gemma 3 (SigLIP + Gemma3 decoder): its processor's quirk. The extra norms around each sublayer,
their ``1 + w`` scale and the VLM's un-capped logits are found structurally."""

from __future__ import annotations

from typing import Any

from .base import Adapter


class Gemma3Adapter(Adapter):
    family = "gemma3"

    def processor_kwargs(self) -> dict[str, Any]:
        # token_type_ids mark image tokens, which attend bidirectionally among themselves.
        return {"return_token_type_ids": True}
