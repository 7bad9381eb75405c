"""Figures on the image itself (an ``image_attention`` result): each sample's picture with the top
heads' attention drawn over it, and the population's attention on the region by layer.

The overlays read the result's ``samples`` group (each image token's rectangle, the image's file)
from the result's own file, and the image from beside it: NetCDF plus the data folder, no torch.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.patches import Rectangle
from PIL import Image

from ..errors import InputError
from ..results.attention_parts import PARTS, attention_parts
from ..results.netcdf import SAMPLES_GROUP, load_group
from .style import BAND, PALETTE, legend_outside, panels

OVERLAID = 8  # samples drawn by image_overlays
PART_STYLE = dict(zip(PARTS, (("-", "on the region"), (":", "on the rest of the image"),
                              ("--", "on matched random boxes"))))


def samples_of(ds: xr.Dataset) -> tuple[xr.Dataset, Path]:
    """A saved result's ``samples`` group and the folder its image paths are relative to."""
    source = ds.encoding.get("source")
    table = load_group(source, SAMPLES_GROUP) if source else None
    if table is None:
        raise InputError("drawing on the image needs the result's samples group: load a result saved by this version "
                         "(anchors.load_result), not one kept in memory")
    return table, Path(source).parent


def attention_density(boxes: np.ndarray, weights: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(height, width) attention per pixel: each image token's weight spread evenly over the pixels
    of its rectangle (``boxes`` (n, 4) ``[x0, y0, x1, y1)``; NaN rows see no pixel), summed where
    rectangles overlap (tiles and a global view)."""
    density = np.zeros(size)
    for (x0, y0, x1, y1), weight in zip(boxes, weights):
        if np.isnan(x0) or not np.isfinite(weight):
            continue
        x0, y0, x1, y1 = int(x0), int(y0), int(x1), int(y1)
        density[y0:y1, x0:x1] += weight / max((x1 - x0) * (y1 - y0), 1)
    return density


def _overlay(ax: plt.Axes, ds: xr.Dataset, table: xr.Dataset, base: Path, sample: str) -> None:
    row, shown = table.sel(sample=sample), ds.sel(sample=sample)
    targeted = shown.attention.isel(head_read=(ds.head_selection == "targeted").values).mean("head_read")
    image_tokens = np.flatnonzero(np.isfinite(row.token_box.sel(corner="x0").values))
    height, width = int(row.image_height), int(row.image_width)
    density = attention_density(row.token_box.values[image_tokens], targeted.values[image_tokens], (height, width))
    # the picture in light greys only, so that its own brightness barely tints the heat over it
    ax.imshow(Image.open(base / str(row.image.item())).convert("L"), cmap="gray", vmin=-2 * 255, vmax=255)
    ax.imshow(density, cmap="inferno", alpha=0.7, extent=(0, width, height, 0))
    region = row.region.values
    if np.isfinite(region).all():
        ax.add_patch(Rectangle(region[:2], region[2] - region[0], region[3] - region[1], fill=False,
                               edgecolor=PALETTE[2], linewidth=2, label="region"))
    for box in shown.matched_box.values[:1]:
        if np.isfinite(box).all():
            ax.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, edgecolor=PALETTE[5],
                                   linestyle="--", linewidth=1.5, label="a matched random box"))
    mass = shown.region_mass.isel(head_read=(ds.head_selection == "targeted").values).mean()
    ax.set_title(f"{sample} ({str(shown.instructed.item())}, {str(shown.answer.item())})\n"
                 f"on region {float(mass):.2f} of all attention", fontsize=8)
    ax.axis("off")


def image_overlays(ds: xr.Dataset) -> plt.Figure:
    """The first :data:`OVERLAID` samples with a region: each image with the targeted heads' mean
    attention (from the query role) per pixel as a heat map over the image in light grey, the region box
    and one matched random box."""
    table, base = samples_of(ds)
    with_region = [str(s) for s in ds.sample.values if np.isfinite(ds.region_mass.sel(sample=s)).any()]
    chosen = (with_region or [str(s) for s in ds.sample.values])[:OVERLAID]
    columns = min(4, len(chosen))
    fig, axes = panels(columns, "Where the top heads look: attention per pixel over the image", width=3.0, height=3.3,
                       nrows=-(-len(chosen) // columns),
                       caption="heat (bright: more): the targeted heads' mean attention from the query role, each "
                               "image token's share spread over its pixels, over the image in light grey")
    for ax, sample in zip(axes, chosen):
        _overlay(ax, ds, table, base, sample)
    for ax in axes[len(chosen):]:
        ax.axis("off")
    legend_outside(fig, axes[0])
    return fig


def region_mass_by_layer(ds: xr.Dataset) -> plt.Figure:
    """Attention mass on the region, on the rest of the image and on matched random boxes, per layer
    of the heads read, for the targeted heads and for random heads of the same layers."""
    with_region = ds.where(np.isfinite(ds.region_mass).any("head_read"), drop=True)
    if not with_region.sizes.get("sample", 0):
        raise InputError("no sample has a region box: nothing to compare")
    fig, axes = panels(2, "Attention on the region, by layer", sharey=True, caption=BAND)
    every_layer = sorted(set(with_region.head_layer.values.tolist()))
    parts = attention_parts(with_region)
    for ax, selection in zip(axes, ("targeted", "random")):
        ax.set(title=f"{selection} heads (n={with_region.sizes['sample']} samples)", xlabel="layer of the head",
               ylabel="attention mass", xlim=(every_layer[0] - 0.5, every_layer[-1] + 0.5))
        chosen = with_region.head_selection == selection
        layers = sorted(set(with_region.head_layer.values[chosen.values].tolist()))
        for colour, (part, (line, label)) in zip(PALETTE, PART_STYLE.items()):
            values = parts.sel(part=part)
            per_layer = [values.isel(head_read=(chosen & (with_region.head_layer == l)).values).mean("head_read")
                         for l in layers]
            mean = np.array([float(v.mean()) for v in per_layer])
            half = np.array([1.96 * float(v.std()) / np.sqrt(max(v.count().item(), 1)) for v in per_layer])
            ax.plot(layers, mean, line, color=colour, marker="o", label=label)
            ax.fill_between(layers, mean - half, mean + half, color=colour, alpha=0.15, linewidth=0)
    legend_outside(fig, axes[0])
    return fig
