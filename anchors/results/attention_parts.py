"""Where a head's attention on the image goes, from an ``image_attention`` result alone (no
torch): the one definition its aggregates and its figure share."""

from __future__ import annotations

import xarray as xr

PARTS: tuple[str, ...] = ("region", "off_region", "matched_box")


def attention_parts(ds: xr.Dataset) -> xr.DataArray:
    """(part, sample, head_read): the attention on the ``region``, on the other image tokens
    (``visual_mass`` minus the region's) and on the matched boxes (mean over draws, NaN left out)."""
    return xr.concat([ds.region_mass, ds.visual_mass - ds.region_mass, ds.matched_box_mass.mean("box_draw", skipna=True)],
                     dim=xr.DataArray(list(PARTS), dims="part", name="part"))
