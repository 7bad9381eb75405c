"""Tiny Gemma 3, Idefics3 / SmolVLM, GLM-4V, DeepSeek-VL, Aya Vision and PaliGemma: families with their own decoder quirks (sandwich norms, parallel blocks, prefix attention)."""

from __future__ import annotations

from typing import Any

from .templates import COHERE_CHAT, DEEPSEEK_CHAT, GEMMA_CHAT, GLM_CHAT, IDEFICS_CHAT
from .tokenizer import fast_tokenizer
from .shared import decoder_sizes, mrope_section


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
            **decoder_sizes(tokenizer, sizes), head_dim=16, query_pre_attn_scalar=16, sliding_window=512, final_logit_softcapping=30.0,  # ignored by the VLM
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


def idefics3(model_type: str = "idefics3", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny Idefics3 or SmolVLM (SigLIP-like + Llama decoder, pixel
    shuffle by 2): a 56×56 image is upscaled to 112, split into 2×2 tiles of 56 plus a global view,
    4 ``<image>`` tokens each (20 in all), framed by ``<fake_token_around_image>`` and
    ``<row_r_col_c>`` / ``<global-img>`` markers."""
    from transformers import (
        Idefics3Config,
        Idefics3ImageProcessor,
        Idefics3Processor,
        SmolVLMConfig,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    markers = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)] + ["<global-img>"]
    specials = ["<|im_start|>", "<fake_token_around_image>", "<image>", "<end_of_utterance>", *markers]
    tokenizer = fast_tokenizer(specials, chat_template=IDEFICS_CHAT, bos="<|begin_of_text|>", eos="<end_of_utterance>",
                               pad="<|finetune_right_pad_id|>")
    ids = tokenizer.convert_tokens_to_ids
    common = dict(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=56, patch_size=14),
        text_config=dict(model_type="llama", **decoder_sizes(tokenizer, sizes), bos_token_id=ids("<|begin_of_text|>"),
                         eos_token_id=ids("<end_of_utterance>"), pad_token_id=ids("<|finetune_right_pad_id|>"),
                         tie_word_embeddings=False),
        image_token_id=ids("<image>"), scale_factor=2, tie_word_embeddings=False,
    )
    images = dict(size={"longest_edge": 112}, max_image_size={"longest_edge": 56})
    if model_type == "smolvlm":
        config = SmolVLMConfig(**common)
        processor = SmolVLMProcessor(SmolVLMImageProcessor(**images), tokenizer, SmolVLMVideoProcessor(),
                                     image_seq_len=4, chat_template=IDEFICS_CHAT)
    else:
        config = Idefics3Config(**common)
        processor = Idefics3Processor(Idefics3ImageProcessor(**images), tokenizer, image_seq_len=4,
                                      chat_template=IDEFICS_CHAT)
    return config, processor


def glm4v(model_type: str = "glm4v", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny GLM-4V (3-D rotary positions, sandwich norms around attention
    and MLP): 56×56 image, patch 14, 2×2 merge → 4 image tokens."""
    from transformers import Glm4vConfig, Glm4vImageProcessor, Glm4vProcessor, Glm4vVideoProcessor

    specials = ["[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|begin_of_image|>", "<|end_of_image|>",
                "<|image|>", "<|begin_of_video|>", "<|end_of_video|>", "<|video|>"]
    tokenizer = fast_tokenizer(specials, chat_template=GLM_CHAT, eos="<|endoftext|>", pad="<|pad|>")
    ids = tokenizer.convert_tokens_to_ids
    hidden, heads = sizes.get("hidden_size", 64), sizes.get("num_attention_heads", 4)
    rotary_half = hidden // heads // 4  # GLM rotates half of each head's dimensions
    config = Glm4vConfig(
        text_config=dict(**decoder_sizes(tokenizer, sizes), eos_token_id=ids("<|endoftext|>"), pad_token_id=ids("<|pad|>"),
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                          "mrope_section": mrope_section(2 * rotary_half)}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, image_size=56, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=hidden),
        image_token_id=ids("<|image|>"), video_token_id=ids("<|video|>"), image_start_token_id=ids("<|begin_of_image|>"),
        image_end_token_id=ids("<|end_of_image|>"), video_start_token_id=ids("<|begin_of_video|>"),
        video_end_token_id=ids("<|end_of_video|>"), tie_word_embeddings=False,
    )
    pixels = {"shortest_edge": 56 * 56, "longest_edge": 2 * 56 * 56}  # GLM counts the 2 temporal patches
    processor = Glm4vProcessor(
        image_processor=Glm4vImageProcessor(size=pixels, patch_size=14, merge_size=2),
        video_processor=Glm4vVideoProcessor(size=pixels, patch_size=14, merge_size=2),
        tokenizer=tokenizer, chat_template=GLM_CHAT,
    )
    return config, processor


def deepseek_vl(model_type: str = "deepseek_vl", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny DeepSeek-VL (SigLIP + Llama decoder, tied embeddings): 28×28
    image, patch 14 → 4 ``<image_placeholder>`` tokens."""
    from transformers import DeepseekVLConfig, DeepseekVLImageProcessor, DeepseekVLProcessor

    tokenizer = fast_tokenizer([], chat_template=DEEPSEEK_CHAT, bos="<｜begin▁of▁sentence｜>", eos="<｜end▁of▁sentence｜>",
                               pad="<｜pad｜>", extra_special={"image_token": "<image_placeholder>"})
    ids = tokenizer.convert_tokens_to_ids
    config = DeepseekVLConfig(
        text_config=dict(model_type="llama", **decoder_sizes(tokenizer, sizes), bos_token_id=ids("<｜begin▁of▁sentence｜>"),
                         eos_token_id=ids("<｜end▁of▁sentence｜>"), pad_token_id=ids("<｜pad｜>")),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=28, patch_size=14),
        image_token_id=ids("<image_placeholder>"),
    )
    processor = DeepseekVLProcessor(DeepseekVLImageProcessor(size={"height": 28, "width": 28}), tokenizer,
                                    chat_template=DEEPSEEK_CHAT, num_image_tokens=4)
    return config, processor


def aya_vision(model_type: str = "aya_vision", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny Aya Vision (SigLIP + Cohere2 decoder with parallel
    attention/MLP blocks and LayerNorms): a 56×56 image is one tile, 16 patches shuffled by 2 into 4
    ``<|IMG_PATCH|>`` tokens framed by ``<|START_OF_IMG|>``, ``TILE_GLOBAL`` and ``<|END_OF_IMG|>``."""
    from transformers import AyaVisionConfig, AyaVisionProcessor, GotOcr2ImageProcessor

    specials = ["<|START_OF_TURN_TOKEN|>", "<|END_OF_TURN_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>",
                "<|SYSTEM_TOKEN|>", "<image>", "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>"]
    tokenizer = fast_tokenizer(specials, chat_template=COHERE_CHAT, bos="<BOS_TOKEN>", eos="<|END_OF_TURN_TOKEN|>",
                               pad="<PAD>")
    ids = tokenizer.convert_tokens_to_ids
    config = AyaVisionConfig(
        text_config=dict(model_type="cohere2", **decoder_sizes(tokenizer, sizes), sliding_window=512,
                         bos_token_id=ids("<BOS_TOKEN>"), eos_token_id=ids("<|END_OF_TURN_TOKEN|>"), pad_token_id=ids("<PAD>")),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=56, patch_size=14),
        downsample_factor=2, image_token_index=ids("<|IMG_PATCH|>"),
    )
    processor = AyaVisionProcessor(
        image_processor=GotOcr2ImageProcessor(size={"height": 56, "width": 56}, crop_to_patches=True, max_patches=4),
        tokenizer=tokenizer, patch_size=14, img_size=56, downsample_factor=2, chat_template=COHERE_CHAT,
    )
    return config, processor


def paligemma(model_type: str = "paligemma", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny PaliGemma (SigLIP + Gemma): 28×28 image, patch 14 → 4 image
    tokens; the processor adds PaliGemma's 1,152 location/segmentation tokens to the vocabulary."""
    from transformers import PaliGemmaConfig, PaliGemmaProcessor, SiglipImageProcessor

    tokenizer = fast_tokenizer([], chat_template=None, bos="<bos>", eos="<eos>", pad="<pad>",
                               extra_special={"image_token": "<image>"})
    image_processor = SiglipImageProcessor(size={"height": 28, "width": 28})
    image_processor.image_seq_length = 4
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    ids = tokenizer.convert_tokens_to_ids
    config = PaliGemmaConfig(
        text_config=dict(model_type="gemma", **{**decoder_sizes(tokenizer, sizes), "vocab_size": len(tokenizer)},
                         head_dim=16, bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"), pad_token_id=ids("<pad>")),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=28, patch_size=14, projection_dim=sizes.get("hidden_size", 64)),
        image_token_index=ids("<image>"), projection_dim=sizes.get("hidden_size", 64),
    )
    return config, processor
