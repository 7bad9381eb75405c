"""Layouts of the families that cut an image into tiles: InternVL and Aya Vision (tiles and a
thumbnail), Idefics3 and SmolVLM (tiles and a global view), LLaVA-NeXT and LLaVA-OneVision (a base
view and a joined grid of tiles). Each follows its processor's resizing and tiling and its model's
feature packing; see :mod:`.layouts` for the contract."""

from __future__ import annotations

import math
from typing import Any

from .geometry import Place, Resize, View, fixed_size, grid_tokens, kernel_of, one_view, patch_of

Size = tuple[int, int]


def _shuffled_cell(config: Any) -> int:
    """View pixels behind one token after a pixel shuffle (InternVL's ``downsample_ratio``, Aya
    Vision's ``downsample_factor``, Idefics3's ``scale_factor``)."""
    patch = patch_of(config)
    if getattr(config, "downsample_ratio", None):
        return round(patch / float(config.downsample_ratio))
    return patch * int(getattr(config, "downsample_factor", None) or getattr(config, "scale_factor", 1))


def tiles_and_thumbnail(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """InternVL, Aya Vision (GotOcr2's ``crop_to_patches``): the image resized, ignoring its aspect,
    to the tile grid whose aspect is closest (``get_optimal_tiled_canvas``), cut into tiles, then a
    thumbnail of the whole image when there is more than one tile; tokens tile by tile."""
    from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

    ip = processor.image_processor
    options = {**getattr(ip, "to_dict", dict)(), **_processor_defaults(processor)}
    tile = fixed_size(ip.size)
    kernel, cell = kernel_of(ip), _shuffled_cell(config)
    grid = (tile[0] // cell, tile[1] // cell)
    if not options.get("crop_to_patches"):
        return one_view("image", (Resize(size, tile, kernel),), (cell, cell), grid)
    cols, rows = get_optimal_tiled_canvas(size, tile, int(options["min_patches"]), int(options["max_patches"]))
    canvas = (rows * tile[0], cols * tile[1])
    views = [View(f"tile {r + 1},{c + 1}", (Resize(size, canvas, kernel), Place(canvas, tile, -r * tile[0], -c * tile[1])),
                  (cell, cell), grid) for r in range(rows) for c in range(cols)]
    if len(views) > 1 and options.get("use_thumbnail", True):
        views.append(View("thumbnail", (Resize(size, tile, kernel),), (cell, cell), grid))
    return views, [t for v in range(len(views)) for t in grid_tokens(v, grid)]


def _processor_defaults(processor: Any) -> dict[str, Any]:
    """The image options a processor class sets over its image processor's (``_defaults``)."""
    import sys

    module = sys.modules[type(processor).__module__]
    for name in dir(module):
        kwargs = getattr(module, name)
        if name.endswith("ProcessorKwargs") and isinstance(getattr(kwargs, "_defaults", None), dict):
            return dict(kwargs._defaults.get("images_kwargs", {}))
    return {}


def split_and_global(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """Idefics3, SmolVLM: the longer side resized to ``size`` (the other even), then up to
    multiples of ``max_image_size`` and cut into tiles of that side, followed by the whole image
    resized to one tile (the global view); a small image is the global view alone."""
    ip = processor.image_processor
    kernel, side, cell = kernel_of(ip), int(ip.max_image_size["longest_edge"]), _shuffled_cell(config)
    first = _longest_edge(size, int(ip.size["longest_edge"])) if ip.do_resize else size
    grid = (side // cell, side // cell)
    steps: tuple = (Resize(size, first, kernel),)
    if not ip.do_image_splitting:
        return one_view("global", steps + (Resize(first, (side, side), kernel),), (cell, cell), grid)
    second = _multiple_of(first, side)
    steps += (Resize(first, second, kernel),)
    if second[0] <= side and second[1] <= side:
        return one_view("global", steps, (cell, cell), grid)
    rows, cols = second[0] // side, second[1] // side
    views = [View(f"tile {r + 1},{c + 1}", steps + (Place(second, (side, side), -r * side, -c * side),), (cell, cell), grid)
             for r in range(rows) for c in range(cols)]
    views.append(View("global", steps + (Resize(second, (side, side), kernel),), (cell, cell), grid))
    return views, [t for v in range(len(views)) for t in grid_tokens(v, grid)]


def _longest_edge(size: Size, longest: int, cap: int = 4096) -> Size:
    """Idefics3's first resize: the longer side to ``longest``, the other truncated and made even,
    then both scaled below the processor's ``MAX_IMAGE_SIZE``."""
    height, width = size
    aspect = width / height
    if width >= height:
        width, height = longest, int(longest / aspect)
        height += height % 2
    else:
        height, width = longest, int(longest * aspect)
        width += width % 2
    height, width = max(height, 1), max(width, 1)
    aspect = width / height
    if width >= height and width > cap:
        width, height = cap, int(cap / aspect)
    elif height > width and height > cap:
        height, width = cap, int(cap * aspect)
    return max(height, 1), max(width, 1)


def _multiple_of(size: Size, side: int) -> Size:
    """Idefics3's ``resize_for_vision_encoder``: the longer side up to a multiple of ``side``, the
    other by the aspect ratio, then up to a multiple too."""
    height, width = size
    aspect = width / height
    if width >= height:
        width = math.ceil(width / side) * side
        height = math.ceil(int(width / aspect) / side) * side
    else:
        height = math.ceil(height / side) * side
        width = math.ceil(int(height * aspect) / side) * side
    return height, width


def any_resolution(processor: Any, config: Any, inputs: Any, index: int, size: Size):
    """LLaVA-NeXT, LLaVA-OneVision: a ``base`` view (the image squashed to one tile) and the
    ``tiles``: the image resized into the best grid resolution keeping its aspect, centred on its
    padding and cut into tiles. The model joins the tiles' features into one grid, crops the rows
    or columns that show padding (``unpad_image``), OneVision shrinks a grid above ``anyres_max_N``
    tiles' worth by bilinear interpolation, and a newline feature ends each row. The ``tiles``
    view's rows and columns are that joined grid's (tile = row // features per tile side)."""
    from transformers.image_processing_utils import select_best_resolution

    ip = processor.image_processor
    kernel, patch, tile = kernel_of(ip), patch_of(config), int(config.vision_config.image_size)
    per_tile = tile // patch
    base = View("base", (Resize(size, (tile, tile), kernel),), (patch, patch), (per_tile, per_tile))
    best = tuple(int(x) for x in select_best_resolution(size, ip.image_grid_pinpoints))
    scale_h, scale_w = best[0] / size[0], best[1] / size[1]
    if scale_w < scale_h:
        resized = (min(math.ceil(size[0] * scale_w), best[0]), best[1])
    else:
        resized = (best[0], min(math.ceil(size[1] * scale_h), best[1]))
    pixel_steps = (Resize(size, resized, kernel), Place(resized, best, (best[0] - resized[0]) // 2, (best[1] - resized[1]) // 2))
    joined = (best[0] // tile * per_tile, best[1] // tile * per_tile)
    unpad = _unpad(joined, size)
    grid_steps: tuple = (unpad,)
    grid = unpad.after
    most = str(getattr(config, "vision_aspect_ratio", "") or "")
    if config.model_type == "llava_onevision" and most.startswith("anyres_max_"):
        ratio = math.sqrt(grid[0] * grid[1] / (int(most.removeprefix("anyres_max_")) * per_tile ** 2))
        if ratio > 1.1:
            shrunk = (int(grid[0] // ratio), int(grid[1] // ratio))
            grid_steps += (Resize(grid, shrunk, "bilinear", antialias=False),)
            grid = shrunk
    tiles = View("tiles", pixel_steps, (patch, patch), grid, grid_steps)
    return [base, tiles], grid_tokens(0, base.grid) + grid_tokens(1, grid, newline=True)


def _unpad(grid: Size, size: Size) -> Place:
    """The model's ``unpad_image``: the joined feature grid cropped (symmetrically, rounding as the
    model does) to the rows or columns the original image's aspect fills."""
    (rows, cols), (height, width) = grid, size
    if width / height > cols / rows:
        kept = int(round(height * (cols / width), 7))
        pad = (rows - kept) // 2
        return Place(grid, (rows - 2 * pad, cols), -pad, 0)
    kept = int(round(width * (rows / height), 7))
    pad = (cols - kept) // 2
    return Place(grid, (rows, cols - 2 * pad), 0, -pad)
