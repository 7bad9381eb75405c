"""PaliGemma (SigLIP + Gemma decoder, a prefix-LM): no chat template, and a bidirectional prompt.

The checkpoints ship no chat template: a prompt is the image placeholder followed by the text, and
the processor expands the placeholder, puts ``<bos>`` after the image and ``\\n`` at the end. Its
``token_type_ids`` mark the whole prompt as prefix, so every prompt position attends to every
other (bidirectional), not only to earlier ones. A knockout still removes exactly the listed
(target query ← source key) edges from that mask; but since later positions are visible, cutting
``context → instruction`` no longer implies the instruction cannot see the context through a
position *after* it, and the reuse sweep reruns from the first position (no causal prefix).
"""

from __future__ import annotations

from typing import Any

from .base import Adapter


class PaliGemmaAdapter(Adapter):
    family = "paligemma"

    def render(self, user_text: str, has_image: bool, system: str | None = None) -> str:
        image = self.processor.image_token if has_image else ""
        return image + (f"{system}\n" if system else "") + user_text

    def encode(self, texts: list[str], images: list[Any] | None) -> Any:
        inputs = super().encode(texts, images)
        inputs.pop("labels", None)  # the processor's training labels; the forward would compute a loss
        return inputs
