"""Qwen2-VL and Qwen2.5-VL (the paper's primary architecture)."""

from __future__ import annotations

from typing import Any

from .base import Adapter

CHATML_VL = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (t, h, w) as Qwen does (≈ 1/4, 3/8, 3/8)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


class QwenVLAdapter(Adapter):
    family = "qwen_vl"
    model_types = ("qwen2_5_vl", "qwen2_vl")

    def processor_kwargs(self) -> dict[str, Any]:
        # Without mm_token_type_ids the 3-D (t, h, w) rotary positions silently fall back to 1-D.
        return {"return_mm_token_type_ids": True}

    @staticmethod
    def tiny(model_type: str = "qwen2_5_vl", *, words: tuple[str, ...] = (), vocab_size: int = 1024,
             **sizes: int) -> tuple[Any, Any]:
        """Config and processor of a tiny random-weight instance (56×56 image → 4 image tokens);
        ``words`` become single tokens of its tokenizer; ``sizes`` override the decoder's and the
        vision tower's sizes (``vision_depth``, ``vision_width``)."""
        from transformers import (
            Qwen2_5_VLConfig,
            Qwen2_5_VLProcessor,
            Qwen2VLConfig,
            Qwen2VLImageProcessor,
            Qwen2VLProcessor,
            Qwen2VLVideoProcessor,
        )

        from ..tiny_tokenizer import fast_tokenizer

        specials = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
        tokenizer = fast_tokenizer(specials, chat_template=CHATML_VL, eos="<|im_end|>", pad="<|endoftext|>",
                                   whole_words=words, vocab_size=vocab_size)
        ids = tokenizer.convert_tokens_to_ids
        hidden = sizes.get("hidden_size", 64)
        heads = sizes.get("num_attention_heads", 4)
        text = dict(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=sizes.get("intermediate_size", 128),
            num_hidden_layers=sizes.get("num_hidden_layers", 3),
            num_attention_heads=heads,
            num_key_value_heads=sizes.get("num_key_value_heads", 2),
            head_dim=hidden // heads,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(hidden // heads)},
            max_position_embeddings=512,
            tie_word_embeddings=False,
            bos_token_id=None, eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
        )
        width = sizes.get("vision_width", 32)
        vision = dict(
            depth=sizes.get("vision_depth", 1), hidden_size=width, intermediate_size=2 * width, num_heads=2,
            patch_size=14, spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden, embed_dim=width,
        )
        token_ids = dict(
            image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        )
        if model_type == "qwen2_5_vl":
            vision.update(fullatt_block_indexes=[vision["depth"] - 1], window_size=56)
            config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **token_ids)
            processor_class = Qwen2_5_VLProcessor
        else:
            # Qwen2-VL names the vision width embed_dim and the merger's output width hidden_size.
            vision.update(hidden_size=hidden)
            config = Qwen2VLConfig(text_config=text, vision_config=vision, **token_ids)
            processor_class = Qwen2VLProcessor
        pixels = {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
        processor = processor_class(
            image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, merge_size=2),
            video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, merge_size=2),
            tokenizer=tokenizer,
            chat_template=CHATML_VL,
        )
        return config, processor
