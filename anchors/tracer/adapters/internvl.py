"""InternVL (InternViT + Qwen2 decoder, native transformers ``internvl`` type).

The processor inserts ``<img>…</img>`` around the image context tokens itself.
"""

from __future__ import annotations

from typing import Any

from .base import Adapter
from .qwen_vl import CHATML_VL

CHATML_INTERNVL = CHATML_VL.replace("<|vision_start|><|image_pad|><|vision_end|>", "<IMG_CONTEXT>\n")


class InternVLAdapter(Adapter):
    family = "internvl"
    model_types = ("internvl",)

    @staticmethod
    def tiny(model_type: str = "internvl", **sizes: int) -> tuple[Any, Any]:
        """Config and processor of a tiny InternVL: 56×56 image, patch 14, pixel shuffle 0.5 → 4 tokens."""
        from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor

        from ..tiny_tokenizer import fast_tokenizer

        special = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                   "video_token": "<video>"}
        tokenizer = fast_tokenizer(
            ["<|im_start|>", "<|im_end|>"], chat_template=CHATML_INTERNVL, eos="<|im_end|>", pad="<|endoftext|>",
            extra_special=special,
        )
        ids = tokenizer.convert_tokens_to_ids
        config = InternVLConfig(
            vision_config=dict(
                hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                image_size=[56, 56], patch_size=[14, 14],
            ),
            text_config=dict(
                model_type="qwen2", vocab_size=len(tokenizer), hidden_size=sizes.get("hidden_size", 64),
                intermediate_size=sizes.get("intermediate_size", 128),
                num_hidden_layers=sizes.get("num_hidden_layers", 3),
                num_attention_heads=sizes.get("num_attention_heads", 4),
                num_key_value_heads=sizes.get("num_key_value_heads", 2), max_position_embeddings=512,
                eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"), tie_word_embeddings=False,
            ),
            image_token_id=ids("<IMG_CONTEXT>"),
            image_seq_length=4,
            downsample_ratio=0.5,
            tie_word_embeddings=False,
        )
        size = {"height": 56, "width": 56}
        processor = InternVLProcessor(
            image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=False),
            video_processor=InternVLVideoProcessor(size=size),
            tokenizer=tokenizer,
            image_seq_length=4,
            chat_template=CHATML_INTERNVL,
        )
        return config, processor
