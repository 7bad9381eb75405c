"""Tiny LLaVA, LLaVA-NeXT, LLaVA-OneVision, Mistral 3 and InternVL: a vision tower whose features a projector maps into the decoder's embeddings."""

from __future__ import annotations

from typing import Any

from .templates import CHATML_INTERNVL, CHATML_LLAVA, LLAMA_CHAT, MISTRAL_CHAT
from .tokenizer import fast_tokenizer
from .shared import decoder_sizes


def mistral3(model_type: str = "mistral3", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny Mistral 3 (Pixtral vision + Mistral decoder): a 56×56 image,
    patch 14, 2×2 patch merge → 2×2 ``[IMG]`` tokens, ``[IMG_BREAK]`` after the first row and
    ``[IMG_END]`` after the last."""
    from transformers import Mistral3Config, PixtralImageProcessor, PixtralProcessor

    tokenizer = fast_tokenizer(["[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]", "[IMG_BREAK]",
                                "[IMG_END]"], chat_template=MISTRAL_CHAT, bos="<s>", eos="</s>", pad="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    config = Mistral3Config(
        text_config=dict(model_type="mistral", **decoder_sizes(tokenizer, sizes), head_dim=16, bos_token_id=ids("<s>"),
                         eos_token_id=ids("</s>"), pad_token_id=ids("<pad>"), tie_word_embeddings=False),
        vision_config=dict(model_type="pixtral", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, head_dim=16, image_size=56, patch_size=14),
        image_token_index=ids("[IMG]"), spatial_merge_size=2, tie_word_embeddings=False,
    )
    processor = PixtralProcessor(
        image_processor=PixtralImageProcessor(size={"longest_edge": 56}, patch_size=14), tokenizer=tokenizer,
        patch_size=14, spatial_merge_size=2, chat_template=MISTRAL_CHAT,
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
            model_type="llama", **decoder_sizes(tokenizer, sizes),
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


def llava_onevision(model_type: str = "llava_onevision", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny LLaVA-OneVision (SigLIP + Qwen2 decoder, "full" features):
    a 56×56 image becomes a 28×28 base view (4 features) plus a 2×2 grid of 28×28 tiles (16
    features) with an image-newline feature after each of the grid's 4 rows: 24 ``<image>``
    positions."""
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tokenizer = fast_tokenizer(["<|im_start|>", "<|im_end|>", "<image>", "<video>"], chat_template=CHATML_LLAVA,
                               eos="<|im_end|>", pad="<|endoftext|>")
    ids = tokenizer.convert_tokens_to_ids
    grid = [[28 * h, 28 * w] for h in (1, 2) for w in (1, 2)]
    config = LlavaOnevisionConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64,
                           num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14),
        text_config=dict(model_type="qwen2", **decoder_sizes(tokenizer, sizes), eos_token_id=ids("<|im_end|>"),
                         pad_token_id=ids("<|endoftext|>"), tie_word_embeddings=False),
        image_token_index=ids("<image>"), video_token_index=ids("<video>"), image_grid_pinpoints=grid,
        vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9", tie_word_embeddings=False,
    )
    size = {"height": 28, "width": 28}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=grid),
        video_processor=LlavaOnevisionVideoProcessor(size=size), tokenizer=tokenizer, num_image_tokens=4,
        vision_feature_select_strategy="full", chat_template=CHATML_LLAVA,
    )
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
            model_type="qwen2", **decoder_sizes(tokenizer, sizes),
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
