"""Configs and processors of tiny random-weight instances, one builder per family.

Every builder returns ``(config, processor)`` for a model small enough to build in a second; the
sizes are keyword arguments (``hidden_size``, ``num_hidden_layers``, ``vision_depth``, …) so the
organisms and benchmarks can scale them. Tokenizers are trained locally (no hub access).
"""

from __future__ import annotations

from typing import Any, Callable

from .templates import CHATML_INTERNVL, CHATML_LLAVA, COHERE_CHAT, CHATML_VL, DEEPSEEK_CHAT, GEMMA_CHAT, GLM_CHAT, IDEFICS_CHAT, LLAMA_CHAT, MISTRAL_CHAT
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
    text = dict(**_decoder(tokenizer, sizes), head_dim=hidden // heads, eos_token_id=ids("<|im_end|>"),
                pad_token_id=ids("<|endoftext|>"),
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(hidden // heads)})
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, patch_size=16, spatial_merge_size=2,
                  temporal_patch_size=2, out_hidden_size=hidden, num_position_embeddings=16)
    if model_type == "qwen3_5":
        layers = sizes.get("num_hidden_layers", 4)
        text.update(num_hidden_layers=layers, linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=8,
                    linear_value_head_dim=8,
                    layer_types=["linear_attention" if i % 2 == 0 else "full_attention" for i in range(layers)])
        text["rope_parameters"].update(partial_rotary_factor=0.5, mrope_section=_mrope_section(hidden // heads // 2))
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


def mistral3(model_type: str = "mistral3", **sizes: int) -> tuple[Any, Any]:
    """Config and processor of a tiny Mistral 3 (Pixtral vision + Mistral decoder): a 56×56 image,
    patch 14, 2×2 patch merge → 2×2 ``[IMG]`` tokens, ``[IMG_BREAK]`` after the first row and
    ``[IMG_END]`` after the last."""
    from transformers import Mistral3Config, PixtralImageProcessor, PixtralProcessor

    tokenizer = fast_tokenizer(["[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[IMG]", "[IMG_BREAK]",
                                "[IMG_END]"], chat_template=MISTRAL_CHAT, bos="<s>", eos="</s>", pad="<pad>")
    ids = tokenizer.convert_tokens_to_ids
    config = Mistral3Config(
        text_config=dict(model_type="mistral", **_decoder(tokenizer, sizes), head_dim=16, bos_token_id=ids("<s>"),
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
        text_config=dict(model_type="qwen2", **_decoder(tokenizer, sizes), eos_token_id=ids("<|im_end|>"),
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
        text_config=dict(model_type="llama", **_decoder(tokenizer, sizes), bos_token_id=ids("<|begin_of_text|>"),
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
        text_config=dict(**_decoder(tokenizer, sizes), eos_token_id=ids("<|endoftext|>"), pad_token_id=ids("<|pad|>"),
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                          "mrope_section": _mrope_section(2 * rotary_half)}),
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
        text_config=dict(model_type="llama", **_decoder(tokenizer, sizes), bos_token_id=ids("<｜begin▁of▁sentence｜>"),
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
        text_config=dict(model_type="cohere2", **_decoder(tokenizer, sizes), sliding_window=512,
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
        text_config=dict(model_type="gemma", **{**_decoder(tokenizer, sizes), "vocab_size": len(tokenizer)},
                         head_dim=16, bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"), pad_token_id=ids("<pad>")),
        vision_config=dict(model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                           num_attention_heads=2, image_size=28, patch_size=14, projection_dim=sizes.get("hidden_size", 64)),
        image_token_index=ids("<image>"), projection_dim=sizes.get("hidden_size", 64),
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


# Keyed by model type: every verified type (adapters.VERIFIED) has a tiny instance.
BUILDERS: dict[str, Callable[..., tuple[Any, Any]]] = {
    "qwen2_5_vl": qwen_vl, "qwen2_vl": qwen_vl, "llava": llava, "llava_next": llava, "llava_onevision": llava_onevision, "internvl": internvl,
    "gemma3": gemma3, "paligemma": paligemma, "idefics3": idefics3,
    "smolvlm": idefics3, "glm4v": glm4v, "deepseek_vl": deepseek_vl,
    "aya_vision": aya_vision, "qwen3_5": qwen3, "qwen3_vl": qwen3,
    "mistral3": mistral3, "llama": text, "qwen2": text,
}
