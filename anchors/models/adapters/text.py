"""Text-only decoders (Llama, Qwen2): the baseline without a vision tower."""

from __future__ import annotations

from .base import Adapter


class TextAdapter(Adapter):
    family = "text"
    model_types = ("llama", "qwen2")
    multimodal = False
    layers_path = "model.layers"
    final_norm_path = "model.norm"

    def messages(self, user_text: str, has_image: bool, system: str | None) -> list[dict]:
        messages = [{"role": "system", "content": system}] if system else []
        return messages + [{"role": "user", "content": user_text}]

    def render(self, user_text: str, has_image: bool, system: str | None = None) -> str:
        return self.tokenizer.apply_chat_template(
            self.messages(user_text, has_image, system), tokenize=False, add_generation_prompt=True
        )
