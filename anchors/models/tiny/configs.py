"""Configs and processors of tiny random-weight instances, one builder per adapter family.

Every builder returns ``(config, processor)`` for a model small enough to build in a second; the
sizes are keyword arguments (``hidden_size``, ``num_hidden_layers``, ``vision_depth``, …) so the
organisms and benchmarks can scale them. Tokenizers are trained locally (no hub access).
"""

from __future__ import annotations

from typing import Any, Callable

from .templates import CHATML_INTERNVL, CHATML_VL, GEMMA_CHAT, LLAMA_CHAT
from .tokenizer import fast_tokenizer


def _decoder(tokenizer: Any, sizes: dict[str, Any]) -> dict[str, Any]:
    """The decoder sizes every tiny text config shares (``sizes`` overrides the defaults)."""
    return dict(vocab_size=len(tokenizer), hidden_size=sizes.get("hidden_size", 64),
                intermediate_size=sizes.get("intermediate_size", 128), num_hidden_layers=sizes.get("num_hidden_layers", 3),
                num_attention_heads=sizes.get("num_attention_heads", 4),
                num_key_value_heads=sizes.get("num_key_value_heads", 2), max_position_embeddings=512)


def _mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (t, h, w) as Qwen does (≈ 1/4, 3/8, 3/8)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]


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
    edge = sizes.get("image_size", 112)  # images are resized to at most edge² pixels: (edge/28)² tokens
    pixels = {"shortest_edge": 56 * 56, "longest_edge": edge * edge}
    processor = processor_class(
        image_processor=Qwen2VLImageProcessor(size=pixels, patch_size=14, merge_size=2),
        video_processor=Qwen2VLVideoProcessor(size=pixels, patch_size=14, merge_size=2),
        tokenizer=tokenizer,
        chat_template=CHATML_VL,
    )
    return config, processor


def llava(model_type: str = "llava", *, words: tuple[str, ...] = (), vocab_size: int = 1024,
         **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny LLaVA: 28×28 image (``image_size``), patch 14 → 4 image
    tokens; ``words`` become single tokens; ``sizes`` override decoder and vision sizes.
    ``llava_next`` adds any-resolution tiling: a 56×56 image becomes a 28×28 base view plus a 2×2
    grid of 28×28 tiles, with an image-newline feature after every row of the grid (all of them
    at ``<image>`` positions)."""
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaNextConfig, LlavaNextImageProcessor, LlavaNextProcessor, LlavaProcessor

    tokenizer = fast_tokenizer(["<image>"], chat_template=LLAMA_CHAT, bos="<s>", eos="</s>", pad="<pad>",
                               whole_words=words, vocab_size=vocab_size)
    image_size = sizes.get("image_size", 28)
    width = sizes.get("vision_width", 32)
    ids = tokenizer.convert_tokens_to_ids
    common = dict(
        vision_config=dict(
            model_type="clip_vision_model", hidden_size=width, intermediate_size=2 * width,
            num_hidden_layers=sizes.get("vision_depth", 2), num_attention_heads=2, image_size=image_size,
            patch_size=14, projection_dim=width,
        ),
        text_config=dict(
            model_type="llama", **_decoder(tokenizer, sizes),
            bos_token_id=ids("<s>"), eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"),
        ),
        image_token_index=ids("<image>"),
        image_seq_length=(image_size // 14) ** 2,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    processor_options = dict(tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default",
                             num_additional_image_tokens=1, chat_template=LLAMA_CHAT)
    crop = dict(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    if model_type == "llava_next":
        grid = [[image_size * h, image_size * w] for h in (1, 2) for w in (1, 2)]
        config = LlavaNextConfig(**common, image_grid_pinpoints=grid)
        processor = LlavaNextProcessor(image_processor=LlavaNextImageProcessor(**crop, image_grid_pinpoints=grid),
                                       **processor_options)
    else:
        config = LlavaConfig(**common)
        processor = LlavaProcessor(image_processor=CLIPImageProcessor(**crop), **processor_options)
    return config, processor


def internvl(model_type: str = "internvl", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny InternVL: 56×56 image, patch 14, pixel shuffle 0.5 → 4 tokens."""
    from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor


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
            model_type="qwen2", **_decoder(tokenizer, sizes),
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


def gemma3(model_type: str = "gemma3", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny Gemma 3: 28×28 image, patch 14 → 4 image tokens."""
    from transformers import Gemma3Config, Gemma3ImageProcessor, Gemma3Processor


    special = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tokenizer = fast_tokenizer(
        ["<start_of_turn>", "<end_of_turn>"], chat_template=GEMMA_CHAT, bos="<bos>", eos="<eos>", pad="<pad>",
        extra_special=special,
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=dict(
            **_decoder(tokenizer, sizes), head_dim=16, query_pre_attn_scalar=16, sliding_window=512, final_logit_softcapping=30.0,  # ignored by the VLM
            bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"), pad_token_id=ids("<pad>"),
        ),
        vision_config=dict(
            model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=2, image_size=28, patch_size=14,
        ),
        mm_tokens_per_image=4,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": 28, "width": 28}),
        tokenizer=tokenizer,
        image_seq_length=4,
        chat_template=GEMMA_CHAT,
    )
    return config, processor


def text(model_type: str = "llama", **sizes: int) -> tuple[Any, Any]:
    """Config and tokenizer of a tiny text-only decoder."""
    from transformers import LlamaConfig, Qwen2Config


    tokenizer = fast_tokenizer(["<|im_start|>", "<|im_end|>"], chat_template=CHATML_VL, eos="<|im_end|>",
                               pad="<|endoftext|>")
    config_class = LlamaConfig if model_type == "llama" else Qwen2Config
    config = config_class(
        **_decoder(tokenizer, sizes),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), tie_word_embeddings=False,
    )
    return config, tokenizer


# Keyed by adapter family; every registered model type of a family gets a tiny instance.
BUILDERS: dict[str, Callable[..., tuple[Any, Any]]] = {
    "qwen_vl": qwen_vl, "llava": llava, "internvl": internvl, "gemma3": gemma3, "text": text,
}
