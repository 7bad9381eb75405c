"""Each family's image layout, as its processor and vision code build it: which views an image
becomes, and in what order their tokens replace the image placeholders.

A layout reads only the processor's settings, its outputs for the batch (``image_grid_thw``,
``image_sizes``, the number of tiles) and the config; it needs no weights. :data:`LAYOUTS` maps a
model type to its layout; :func:`geometry_of` checks the token count against the processor's.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from .geometry import ImageGeometry, Place, Resize, Token, View, fixed_size, image_geometry, kernel_of, one_view, patch_of
from .tiled_layouts import any_resolution, split_and_global, tiles_and_thumbnail
from .structure import AdapterError

Size = tuple[int, int]
#: (processor, config, processor outputs, row index, original (height, width)) -> views and tokens
Layout = Callable[[Any, Any, Any, int, Size], tuple[list[View], list[Token]]]


def shortest_edge(size: Size, short: int) -> Size:
    """The size after resizing the shorter side to ``short``, the longer by the same factor,
    truncated (transformers' ``get_resize_output_image_size`` without ``default_to_square``)."""
    height, width = size
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def centre_crop(size: Size, crop: Size) -> Place:
    """The processors' centre crop (padding first where the crop is larger, as torchvision does)."""
    pad_top, pad_left = max(crop[0] - size[0], 0) // 2, max(crop[1] - size[1], 0) // 2
    padded = (max(size[0], crop[0]), max(size[1], crop[1]))
    top, left = int((padded[0] - crop[0]) / 2.0), int((padded[1] - crop[1]) / 2.0)
    return Place(size, crop, pad_top - top, pad_left - left)


# -- families ---------------------------------------------------------------------------------

def multimodal_rope(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """Qwen2-VL, Qwen2.5-VL, Qwen3-VL, Qwen3.5, GLM-4V: the whole image resized to the processor's
    ``image_grid_thw`` patches, merged ``merge_size``×``merge_size``, tokens row by row."""
    ip = processor.image_processor
    _, rows, cols = (int(x) for x in inputs["image_grid_thw"][index])
    patch, merge = int(ip.patch_size), int(ip.merge_size)
    resize = Resize(size, (rows * patch, cols * patch), kernel_of(ip))
    return one_view("image", (resize,), (patch * merge, patch * merge), (rows // merge, cols // merge))


def clip_crop(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """LLaVA-1.5: shorter side resized to ``size``, centre-cropped to ``crop_size`` (the edges of a
    non-square image reach no token), one token per patch (the class token dropped by the
    ``default`` feature strategy)."""
    ip = processor.image_processor
    resized = shortest_edge(size, int(ip.size["shortest_edge"]))
    crop = fixed_size(ip.crop_size) if ip.do_center_crop else resized
    steps: tuple = (Resize(size, resized, kernel_of(ip)),) + ((centre_crop(resized, crop),) if ip.do_center_crop else ())
    patch = patch_of(config)
    views, tokens = one_view("image", steps, (patch, patch), (crop[0] // patch, crop[1] // patch))
    if getattr(config, "vision_feature_select_strategy", "default") == "full":
        tokens = [(0, -1, -1)] + tokens  # the class token, summarising the view, stands for no patch
    return views, tokens


def squashed(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """PaliGemma (SigLIP), Gemma 3: the image resized to a fixed square, one token per patch, or per
    pooled block of patches (Gemma 3 averages ``patches/side ÷ √mm_tokens_per_image`` squared)."""
    ip = processor.image_processor
    if getattr(ip, "do_pan_and_scan", False):
        raise AdapterError(f"{config.model_type}: the geometry of pan-and-scan crops is not described; "
                           "turn do_pan_and_scan off to place image tokens")
    target, patch = fixed_size(ip.size), patch_of(config)
    pool = 1
    if getattr(config, "mm_tokens_per_image", None):
        pool = (target[0] // patch) // math.isqrt(int(config.mm_tokens_per_image))
    cell = (patch * pool, patch * pool)
    return one_view("image", (Resize(size, target, kernel_of(ip)),), cell, (target[0] // cell[0], target[1] // cell[1]))


def padded_square(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """DeepSeek-VL: the longer side resized to ``size`` (rounded, at least ``min_size``), then
    centred on a square of background colour; tokens over the padding see no pixel."""
    ip = processor.image_processor
    side = int(ip.size["height"])
    scale = side / max(size)
    resized = (max(round(size[0] * scale), ip.min_size), max(round(size[1] * scale), ip.min_size))
    top = (side - resized[0]) // 2 if resized[1] > resized[0] else 0
    left = (side - resized[1]) // 2 if resized[0] > resized[1] else 0
    steps = (Resize(size, resized, kernel_of(ip)), Place(resized, (max(resized), max(resized)), top, left))
    patch = patch_of(config)
    return one_view("image", steps, (patch, patch), (max(resized) // patch, max(resized) // patch))


def pixtral(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """Mistral 3 (Pixtral): resized to fit ``longest_edge`` in multiples of patch × merge (the
    processor's ``image_sizes``), 2×2 patches merged, tokens row by row (``[IMG_BREAK]`` between
    rows is a template token)."""
    resized = tuple(int(x) for x in inputs["image_sizes"][index])
    cell = int(processor.patch_size) * int(processor.spatial_merge_size)
    steps = (Resize(size, resized, kernel_of(processor.image_processor)),)
    return one_view("image", steps, (cell, cell), (resized[0] // cell, resized[1] // cell))


#: model type -> its layout: every verified multimodal family has one (a test keeps them equal)
LAYOUTS: dict[str, Layout] = {
    "qwen2_vl": multimodal_rope, "qwen2_5_vl": multimodal_rope, "qwen3_vl": multimodal_rope,
    "qwen3_5": multimodal_rope, "glm4v": multimodal_rope,
    "llava": clip_crop, "paligemma": squashed, "gemma3": squashed, "deepseek_vl": padded_square,
    "mistral3": pixtral, "internvl": tiles_and_thumbnail, "aya_vision": tiles_and_thumbnail,
    "idefics3": split_and_global, "smolvlm": split_and_global,
    "llava_next": any_resolution, "llava_onevision": any_resolution,
}


def pixel_size(image: Any) -> Size:
    """(height, width) of a PIL image, or of an array or tensor laid out (C, H, W) or (H, W, C).

    >>> import numpy as np
    >>> pixel_size(np.zeros((30, 40, 3))), pixel_size(np.zeros((3, 30, 40)))
    ((30, 40), (30, 40))"""
    if isinstance(getattr(image, "size", None), tuple):  # PIL: (width, height); numpy's size is a count
        return int(image.size[1]), int(image.size[0])
    shape = tuple(image.shape)
    return (int(shape[-2]), int(shape[-1])) if shape[0] in (1, 3, 4) and len(shape) == 3 else (int(shape[0]), int(shape[1]))


def geometry_of(model_type: str, processor: Any, config: Any, inputs: Any, index: int, size: Size,
                n_visual: int) -> ImageGeometry:
    """The geometry of row ``index``'s image (original ``size``), checked to list as many tokens as
    the processor inserted (``n_visual``)."""
    if model_type not in LAYOUTS:
        raise AdapterError(f"{model_type}: no image layout is described for this family; families with one: "
                           f"{', '.join(sorted(LAYOUTS))}")
    views, tokens = LAYOUTS[model_type](processor, config, inputs, index, size)
    if len(tokens) != n_visual:
        raise AdapterError(f"{model_type}: the layout places {len(tokens)} visual tokens for a {size[1]}×{size[0]} image "
                           f"but the processor inserted {n_visual}")
    return image_geometry(size, views, tokens)
