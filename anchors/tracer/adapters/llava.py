"""LLaVA (CLIP vision tower + Llama-family decoder).

llava_next and llava_onevision use the same language-model paths, but their any-resolution image
processing has no tiny test instance yet, so they are not registered until the contract tests
cover them.
"""

from __future__ import annotations

from typing import Any

from .base import Adapter

LLAMA_CHAT = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}SYSTEM: {% elif message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


class LlavaAdapter(Adapter):
    family = "llava"
    model_types = ("llava",)

    @staticmethod
    def tiny(model_type: str = "llava", *, words: tuple[str, ...] = (), vocab_size: int = 1024,
             **sizes: int) -> tuple[Any, Any]:
        """Config and processor of a tiny LLaVA: 28×28 image (``image_size``), patch 14 → 4 image
        tokens; ``words`` become single tokens; ``sizes`` override decoder and vision sizes."""
        from transformers import CLIPImageProcessor, LlavaConfig, LlavaProcessor

        from ..tiny_tokenizer import fast_tokenizer

        tokenizer = fast_tokenizer(["<image>"], chat_template=LLAMA_CHAT, bos="<s>", eos="</s>", pad="<pad>",
                                   whole_words=words, vocab_size=vocab_size)
        image_size = sizes.get("image_size", 28)
        width = sizes.get("vision_width", 32)
        ids = tokenizer.convert_tokens_to_ids
        config = LlavaConfig(
            vision_config=dict(
                model_type="clip_vision_model", hidden_size=width, intermediate_size=2 * width,
                num_hidden_layers=sizes.get("vision_depth", 2), num_attention_heads=2, image_size=image_size,
                patch_size=14, projection_dim=width,
            ),
            text_config=dict(
                model_type="llama", vocab_size=len(tokenizer), hidden_size=sizes.get("hidden_size", 64),
                intermediate_size=sizes.get("intermediate_size", 128),
                num_hidden_layers=sizes.get("num_hidden_layers", 3),
                num_attention_heads=sizes.get("num_attention_heads", 4),
                num_key_value_heads=sizes.get("num_key_value_heads", 2), max_position_embeddings=512,
                bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"),
            ),
            image_token_index=ids("<image>"),
            image_seq_length=(image_size // 14) ** 2,
            vision_feature_layer=-1,
            vision_feature_select_strategy="default",
        )
        processor = LlavaProcessor(
            image_processor=CLIPImageProcessor(size={"shortest_edge": image_size},
                                               crop_size={"height": image_size, "width": image_size}),
            tokenizer=tokenizer,
            patch_size=14,
            vision_feature_select_strategy="default",
            num_additional_image_tokens=1,
            chat_template=LLAMA_CHAT,
        )
        return config, processor
