"""Text-only decoders (Llama, Qwen2): the baseline without a vision tower."""

from __future__ import annotations

from typing import Any

from .base import Adapter
from .qwen_vl import CHATML_VL


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

    @staticmethod
    def tiny(model_type: str = "llama", **sizes: int) -> tuple[Any, Any]:
        """Config and tokenizer of a tiny text-only decoder."""
        from transformers import LlamaConfig, Qwen2Config

        from ..tiny_tokenizer import fast_tokenizer

        tokenizer = fast_tokenizer(["<|im_start|>", "<|im_end|>"], chat_template=CHATML_VL, eos="<|im_end|>",
                                   pad="<|endoftext|>")
        config_class = LlamaConfig if model_type == "llama" else Qwen2Config
        config = config_class(
            vocab_size=len(tokenizer), hidden_size=sizes.get("hidden_size", 64),
            intermediate_size=sizes.get("intermediate_size", 128),
            num_hidden_layers=sizes.get("num_hidden_layers", 3),
            num_attention_heads=sizes.get("num_attention_heads", 4),
            num_key_value_heads=sizes.get("num_key_value_heads", 2), max_position_embeddings=512,
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), tie_word_embeddings=False,
        )
        return config, tokenizer
