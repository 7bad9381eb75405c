"""Where visual tokens sit in the image, checked independently of how the geometry is computed:

- each resize's kernel support against torchvision resizing a one-pixel image;
- on every verified family's tiny instance, with its vision tower made local (every attention
  output in the tower zeroed, so a feature depends on its own pixels only), perturbing the pixels
  inside a box changes exactly the visual tokens whose rectangles overlap the box at the language
  model's input (bit for bit: a token outside changes by not one bit), and pixels no token sees
  (a centre crop's edges) change none;
- at each family's released image settings (no weights), the geometry lists as many tokens as the
  processor inserts, for three aspect ratios.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from anchors.models.adapters.geometry import Resize
from anchors.models.adapters.layouts import LAYOUTS, geometry_of
from anchors.models.adapters.registry import VERIFIED
from anchors.models.tiny import tiny_model

from .geometry_settings import ASPECTS, RELEASED, released

MULTIMODAL = [t for t in VERIFIED if t not in ("llama", "qwen2")]
SIZES = ((50, 80), (80, 50), (64, 64))


def test_every_verified_multimodal_family_has_a_layout_and_released_settings():
    assert sorted(LAYOUTS) == sorted(MULTIMODAL) == sorted(RELEASED)


@pytest.mark.parametrize("kernel,mode", [("bicubic", "BICUBIC"), ("bilinear", "BILINEAR")])
@pytest.mark.parametrize("before,after", [(50, 28), (28, 50), (97, 13), (40, 40), (13, 97)])
def test_kernel_support_equals_torchvision_on_a_one_pixel_image(kernel, mode, before, after):
    """Output ``u`` depends on input pixel ``j`` iff ``j`` lies in ``Resize.back(u)``: resizing a
    one-hot image with torchvision (antialias, as the processors call it) says which outputs see ``j``."""
    from torchvision.transforms.v2 import functional as F
    from torchvision.transforms import InterpolationMode

    step = Resize((1, before), (1, after), kernel)
    for j in range(before):
        image = torch.zeros(1, 1, before, dtype=torch.float64)
        image[0, 0, j] = 1.0
        out = F.resize(image, [1, after], interpolation=getattr(InterpolationMode, mode), antialias=True)[0, 0]
        # a weight that is zero in exact arithmetic comes out as float noise (1e-17) at the support's edge
        seen = {u for u in range(after) if abs(out[u]) > 1e-12}
        predicted = {u for u in range(after) if (span := step.back(1, (u, u + 1))) and span[0] <= j < span[1]}
        # the kernels vanish at isolated points inside their support (bicubic at ±1): never more than predicted
        assert seen <= predicted, (j, seen, predicted)
        assert len(predicted - seen) <= 2, (j, seen, predicted)


def _local_tower(module: torch.nn.Module, decoder_layers: str) -> list:
    """Hooks zeroing every attention output of the vision tower (every *Attention module outside the
    decoder's layers), so each feature depends only on the pixels of its own patch or merge group."""
    def zero(_module, _args, out):
        return (torch.zeros_like(out[0]),) + tuple(out[1:]) if isinstance(out, tuple) else torch.zeros_like(out)

    return [m.register_forward_hook(zero) for name, m in module.named_modules()
            if type(m).__name__.endswith("Attention") and not name.startswith(decoder_layers)]


def _decoder_inputs(loaded, image: torch.Tensor):
    """The processor outputs, and the first decoder layer's input at the image's positions."""
    adapter, module = loaded.adapter, loaded.module
    inputs = adapter.encode([adapter.render("Describe it.", True, None)], [image])
    captured: dict[str, torch.Tensor] = {}

    def grab(_module, args, kwargs):
        captured.setdefault("hidden", (args[0] if args else kwargs["hidden_states"]).detach().clone())

    hooks = _local_tower(module, adapter.paths(module).layers)
    hooks.append(adapter.layers(module)[0].register_forward_pre_hook(grab, with_kwargs=True))
    try:
        with torch.no_grad():
            module(**inputs)
    finally:
        for hook in hooks:
            hook.remove()
    visual = torch.isin(inputs["input_ids"][0], torch.tensor(adapter.image_token_ids))
    return inputs, captured["hidden"][0][visual]


@pytest.mark.parametrize("model_type", MULTIMODAL)
def test_a_box_of_pixels_changes_exactly_the_tokens_whose_rectangles_overlap_it(model_type):
    _check_locality(tiny_model(model_type, "eager"), SIZES)


def test_onevisions_feature_interpolation_is_placed_too():
    """A joined grid above ``anyres_max_N`` tiles' worth is shrunk by bilinear interpolation: each
    token then mixes up to 2×2 features (the tiny model's 2×2 tiles need N = 1 to shrink)."""
    loaded = tiny_model("llava_onevision", "eager")
    config, processor = loaded.module.config, loaded.adapter.processor
    before = config.vision_aspect_ratio, processor.vision_aspect_ratio
    config.vision_aspect_ratio = processor.vision_aspect_ratio = "anyres_max_1"
    try:
        grids = _check_locality(loaded, ((50, 80), (56, 56)))
    finally:
        config.vision_aspect_ratio, processor.vision_aspect_ratio = before
    assert all(grid[1] < 4 for grid in grids)  # the 4-feature rows were shrunk


def _check_locality(loaded, sizes) -> list[tuple[int, int]]:
    """The box check on each image size; returns the last view's token grid per size."""
    adapter, model_type = loaded.adapter, loaded.adapter.model_type
    rng = np.random.default_rng(0)
    grids, edge_only = [], []
    for height, width in sizes:
        # float pixels: a uint8 image would round away the smallest kernel weights at a rectangle's edge
        base = torch.tensor(rng.uniform(0, 255, (3, height, width)), dtype=torch.float32)
        inputs, clean = _decoder_inputs(loaded, base)
        geometry = geometry_of(model_type, adapter.processor, adapter.config, inputs, 0, (height, width), len(clean))
        boxes = [(x0, y0, x0 + int(rng.integers(3, width // 2)), y0 + int(rng.integers(3, height // 2)))
                 for x0, y0 in zip(rng.integers(0, width // 2, 5), rng.integers(0, height // 2, 5))]
        boxes += [tuple(int(v) for v in box) for box in geometry.unseen]
        for x0, y0, x1, y1 in boxes:
            image = base.clone()
            image[:, y0:y1, x0:x1] = torch.tensor(rng.uniform(0, 255, (3, y1 - y0, x1 - x0)), dtype=torch.float32)
            _, edited = _decoder_inputs(loaded, image)
            changed = (edited != clean).any(-1).numpy()
            overlapping = geometry.overlapping((x0, y0, x1, y1))
            # no token outside its rectangle changes by a single bit; every token whose rectangle the box
            # overlaps beyond the rectangle's outermost pixels changes (through two or three chained
            # resizes, as Idefics3's global view takes, an outermost pixel's weight is a product of
            # kernel tails that can fall below float32's resolution)
            inner = replace(geometry, rects=geometry.rects + np.array([1, 1, -1, -1])).overlapping((x0, y0, x1, y1))
            assert not (changed & ~overlapping).any() and not (inner & ~changed).any(), (
                f"{model_type} {width}×{height}, box {(x0, y0, x1, y1)}: changed {np.flatnonzero(changed).tolist()}, "
                f"overlapping {np.flatnonzero(overlapping).tolist()}")
            edge_only.append(int((overlapping & ~changed).sum()))
        grids.append((int(geometry.row[geometry.view == geometry.view.max()].max()) + 1,
                      int(geometry.col[geometry.view == geometry.view.max()].max()) + 1))
    assert sum(edge_only) <= max(1, len(edge_only) // 4), edge_only  # rim-only misses stay rare
    return grids


def test_a_centre_crop_leaves_the_edges_of_a_wide_image_unseen():
    config, processor = released("llava")
    from PIL import Image

    image = Image.new("RGB", (640, 480))
    adapter_inputs = processor(text=["<image>"], images=[[image]], return_tensors="pt")
    geometry = geometry_of("llava", processor, config, adapter_inputs, 0, (480, 640), 576)
    # 480 → 336 scales 640 to 448; the crop keeps the middle 336 columns: 56 resized columns (80 original) each side
    assert geometry.unseen[:, [1, 3]].tolist() == [[0, 480], [0, 480]]
    left, right = geometry.unseen[0], geometry.unseen[1]
    assert 76 <= left[2] <= 80 and 560 <= right[0] <= 564
    assert np.nanmin(geometry.rects[:, 0]) == left[2] and np.nanmax(geometry.rects[:, 2]) == right[0]


@pytest.mark.parametrize("model_type", MULTIMODAL)
def test_released_settings_place_as_many_tokens_as_the_processor_inserts(model_type):
    from PIL import Image

    from anchors.models.adapters.registry import adapter_class

    config, processor = released(model_type)
    adapter = adapter_class(model_type)(config, processor)
    image_id = adapter.image_token_ids[0]
    for height, width in ASPECTS:
        inputs = adapter.encode([adapter.render("Describe it.", True, None)], [Image.new("RGB", (width, height))])
        n_visual = int((inputs["input_ids"][0] == image_id).sum())
        geometry = geometry_of(model_type, processor, config, inputs, 0, (height, width), n_visual)
        assert len(geometry) == n_visual > 16
        seen = geometry.rects[~np.isnan(geometry.rects).any(axis=1)]
        assert (seen[:, 0] >= 0).all() and (seen[:, 2] <= width).all() and (seen[:, 3] <= height).all()
