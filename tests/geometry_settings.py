"""Processors and configs at each family's published image settings (no weights): the tiny
instance's tokenizer and chat template, with the image processor, the processor's image options
and the config's vision sizes of the released checkpoint (their preprocessor_config.json and
config.json), so token counts are those a real model sees."""

from __future__ import annotations

import copy
from typing import Any

from anchors.models.tiny import tiny_config

LLAVA_16_PINPOINTS = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
QWEN3_PIXELS = {"patch_size": 16, "merge_size": 2, "size": {"shortest_edge": 65536, "longest_edge": 16777216}}

# model type -> (image processor options, processor options, config attributes) of a released checkpoint
RELEASED: dict[str, tuple[dict, dict, dict]] = {
    "qwen2_vl": ({}, {}, {}),  # Qwen2-VL-7B-Instruct: the processor's defaults
    "qwen2_5_vl": ({}, {}, {}),  # Qwen2.5-VL-7B-Instruct
    "qwen3_vl": (QWEN3_PIXELS, {}, {}),  # Qwen3-VL-8B-Instruct
    "qwen3_5": (QWEN3_PIXELS, {}, {}),
    "glm4v": ({}, {}, {}),  # GLM-4.1V-9B
    "llava": ({"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336}}, {},
              {"vision_config.image_size": 336}),  # llava-1.5-7b-hf
    "llava_next": ({"size": {"shortest_edge": 336}, "crop_size": {"height": 336, "width": 336},
                    "image_grid_pinpoints": LLAVA_16_PINPOINTS}, {},
                   {"vision_config.image_size": 336, "image_grid_pinpoints": LLAVA_16_PINPOINTS}),  # llava-v1.6
    "llava_onevision": ({}, {"num_image_tokens": 729}, {"vision_config.image_size": 384}),  # llava-onevision-qwen2-7b
    "internvl": ({"size": {"height": 448, "width": 448}, "max_patches": 12}, {"image_seq_length": 256},
                 {"vision_config.image_size": [448, 448]}),  # InternVL3-8B-hf
    "gemma3": ({"size": {"height": 896, "width": 896}}, {"image_seq_length": 256},
               {"vision_config.image_size": 896, "mm_tokens_per_image": 256}),  # gemma-3-4b-it
    "paligemma": ({"size": {"height": 224, "width": 224}}, {}, {"vision_config.image_size": 224}),  # paligemma-3b-224
    "idefics3": ({}, {"image_seq_len": 169}, {"vision_config.image_size": 364}),  # Idefics3-8B-Llama3
    "smolvlm": ({"size": {"longest_edge": 2048}, "max_image_size": {"longest_edge": 512}}, {"image_seq_len": 64},
                {"vision_config.image_size": 512, "vision_config.patch_size": 16, "scale_factor": 4}),  # SmolVLM-256M
    "deepseek_vl": ({"size": {"height": 384, "width": 384}}, {"num_image_tokens": 576},
                    {"vision_config.image_size": 384, "vision_config.patch_size": 16}),  # deepseek-vl-1.3b-chat
    "aya_vision": ({"size": {"height": 364, "width": 364}, "crop_to_patches": True, "max_patches": 12},
                   {"patch_size": 14, "img_size": 364, "downsample_factor": 2}, {"vision_config.image_size": 364}),
    "mistral3": ({"size": {"longest_edge": 1540}, "patch_size": 14}, {}, {}),  # Mistral-Small-3.1-24B
}

# the tiny processor's own options a new processor of the class must be given again
KEPT: dict[str, tuple[str, ...]] = {
    "llava": ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens"),
    "llava_next": ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens"),
    "llava_onevision": ("vision_feature_select_strategy",),
    "mistral3": ("patch_size", "spatial_merge_size"),
}

# (height, width): landscape, a tall strip and a wide strip
ASPECTS: tuple[tuple[int, int], ...] = ((480, 640), (1200, 400), (333, 1000))


def released(model_type: str) -> tuple[Any, Any]:
    """``(config, processor)`` of ``model_type`` at its released image settings."""
    config, processor = tiny_config(model_type)
    image_options, processor_options, config_options = RELEASED[model_type]
    config = copy.deepcopy(config)
    for dotted, value in config_options.items():
        *parents, name = dotted.split(".")
        node = config
        for parent in parents:
            node = getattr(node, parent)
        setattr(node, name, value)
    image_processor = type(processor.image_processor)(**image_options)
    if model_type == "paligemma":
        image_processor.image_seq_length = 256
    parts = {"image_processor": image_processor, "tokenizer": processor.tokenizer}
    if getattr(processor, "video_processor", None) is not None:
        parts["video_processor"] = processor.video_processor
    kept = {name: getattr(processor, name) for name in KEPT.get(model_type, ())}
    return config, type(processor)(**parts, chat_template=processor.chat_template, **{**kept, **processor_options})
