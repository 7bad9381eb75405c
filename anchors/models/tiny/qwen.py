"""Tiny Qwen2-VL, Qwen2.5-VL, Qwen3-VL and Qwen3.5 (multimodal rotary positions; Qwen3.5's hybrid decoder)."""

from __future__ import annotations

from typing import Any

from .templates import CHATML_VL
from .tokenizer import fast_tokenizer
from .shared import decoder_sizes, mrope_section


def qwen_vl(model_type: str = "qwen2_5_vl", *, words: tuple[str, ...] = (), vocab_size: int = 1024,
         **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny random-weight instance (56×56 image → 4 image tokens);
    ``words`` become single tokens of its tokenizer; ``sizes`` override the decoder's and the
    vision tower's sizes (``vision_depth``, ``vision_width``) and the largest image edge
    (``image_size``, default 112)."""
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLProcessor,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

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
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section(hidden // heads)},
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
    edge = sizes.get("image_size", 112)  # images are resized to at most edge² pixels: (edge/28)² tokens
    pixels = {"shortest_edge": 56 * 56, "longest_edge": edge * edge}
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, merge_size=2),
        video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, merge_size=2),
        tokenizer=tokenizer,
        chat_template=CHATML_VL,
    )
    return config, processor


def qwen3(model_type: str = "qwen3_vl", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny Qwen3-VL or Qwen3.5 (56×56 image → 64×64, patch 16, 2×2
    merge → 4 image tokens). Qwen3-VL: DeepStack adds features of the vision tower's layer 0 to the
    image positions after decoder layer 0. Qwen3.5, a hybrid decoder: linear-attention (gated delta
    rule) layers 0 and 2, softmax attention layers 1 and 3."""
    from transformers import Qwen2VLImageProcessor, Qwen3_5Config, Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor

    specials = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
    tokenizer = fast_tokenizer(specials, chat_template=CHATML_VL, eos="<|im_end|>", pad="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    hidden, heads = sizes.get("hidden_size", 64), sizes.get("num_attention_heads", 4)
    text = dict(**decoder_sizes(tokenizer, sizes), head_dim=hidden // heads, eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"),
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": mrope_section(hidden // heads)})
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=hidden, num_position_embeddings=16)
    if model_type == "qwen3_5":
        layers = sizes.get("num_hidden_layers", 4)
        text.update(num_hidden_layers=layers, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                    linear_value_head_dim=8,
                    layer_types=["linear_attention" if i % 2 == 0 else "full_attention" for i in range(layers)])
        text["rope_parameters"].update(partial_rotary_factor=0.5, mrope_section=mrope_section(hidden // heads // 2))
        config_class = Qwen3_5Config
    else:
        vision.update(depth=2, deepstack_visual_indexes=[0])
        config_class = Qwen3VLConfig
    config = config_class(
        text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"), tie_word_embeddings=False,
    )
    pixels = {"shortest_edge": 64 * 64, "longest_edge": 64 * 64}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=16, merge_size=2),
        video_processor=Qwen3VLVideoProcessor(size=pixels, patch_size=16, merge_size=2),
        tokenizer=tokenizer, chat_template=CHATML_VL,
    )
    return config, processor
