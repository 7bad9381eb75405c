"""Attention to the image: where the heads that arbitrate (Eq 9's top heads) look in the picture.

Per sample and head read (the ranking's top-k, and random heads of the same layers), the
attention from the query role's positions (averaged) to every prompt position, as eager attention
computes it with the model's own mask (:meth:`~anchors.tracer.model_view.ModelView.attention`);
the mass on the sample's ``region`` against the same box moved to random places that cover as
many image tokens (:meth:`~anchors.models.adapters.geometry.ImageGeometry.matched_boxes`); and
positions that take far more than a uniform share flagged as attention sinks, not hidden. A
position's rectangle in the image is the result's ``samples`` group's ``token_box``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import nnsight
import numpy as np
import torch
import xarray as xr

from ..datasets.matched_regions import sample_matched_boxes
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import TracedSample
from ..prompts.roles import ROLE_CODE, VISUAL_PARTS
from ..readouts.metrics import decide
from ..results.attention_parts import PARTS, attention_parts
from ..results.schema import sample_coords
from ..tracer.batching import encode_samples
from ..tracer.model_view import ModelView
from ..tracer.trace import SAVED_TENSOR_OVERHEAD, to_host
from .base import Advance, Cost, RankedHeadsAnalysis, Resolved
from .configs import ImageAttentionConfig

SELECTIONS: tuple[str, ...] = ("targeted", "random")  # a head read is one of the ranking's top heads or a random one


@dataclass(frozen=True)
class ImageAttentionPlan(Resolved):
    """The heads read, as (layer, head, kind) in layer order, and the options."""

    picks: tuple[tuple[int, int, str], ...]
    config: dict[str, Any]

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted({layer for layer, _, _ in self.picks}))

    def as_config(self) -> dict[str, Any]:
        return dict(self.config)


class ImageAttention(RankedHeadsAnalysis[TracedSample]):
    """Needs a head ranking: pass the lens result (``lens``) the top heads come from.

    >>> lens = anchors.run(anchors.LensProfile(top_k=3), "organism", samples)
    >>> seen = anchors.run(anchors.ImageAttention(lens, top_k=2, n_random=1), "organism", samples)
    >>> seen.attention.dims, seen.head_selection.values.tolist()
    (('sample', 'head_read', 'position'), ['targeted', 'targeted', 'random', 'random'])"""

    experiment = "image_attention"
    edits = False
    Config = ImageAttentionConfig

    def resolve(self, adapter: Adapter, items: Sequence[TracedSample] = ()) -> ImageAttentionPlan:
        self.check_ranking(adapter)
        config = self.config
        config.check()
        n_heads = adapter.shape.n_heads
        ranked, pool = self.softmax_heads(adapter, config.modality)
        top = ranked[:config.top_k]
        random = matched_random_heads(top, [h for h in pool if h not in top], n_heads, config.n_random,
                                      np.random.default_rng(config.seed))
        picks = [(h // n_heads, h % n_heads, "targeted") for h in top] + [(h // n_heads, h % n_heads, "random") for h in random]
        settings = {f: getattr(config, f) for f in ("top_k", "modality", "n_random", "query_role", "n_boxes",
                                                    "sink_factor", "seed")}
        return ImageAttentionPlan(tuple(sorted(picks, key=lambda p: (SELECTIONS.index(p[2]), p[0], p[1]))), settings)

    def cost(self, plan: ImageAttentionPlan, adapter: Adapter, chunk: Sequence[TracedSample]) -> Cost:
        length = int(encode_samples(adapter, chunk)[0].roles.shape[1])
        returned = 4 * len(chunk) * len(plan.picks) * length + 8 * len(chunk) + 2 * SAVED_TENSOR_OVERHEAD
        return Cost(1, 1, 1, length=length, returned=returned)

    def run_batch(self, plan: ImageAttentionPlan, loaded: LoadedModel, chunk: Sequence[TracedSample],
                  advance: Advance) -> xr.Dataset:
        encoded, space = encode_samples(loaded.adapter, chunk)
        view, query = ModelView(loaded), plan.config["query_role"]
        by_layer = [(layer, [h for l, h, _ in plan.picks if l == layer]) for layer in plan.layers]
        with torch.no_grad(), view.trace(encoded, logits_to_keep=1):
            columns = [view.mean(view.attention(layer).transpose(1, 2), encoded, query)[:, heads]
                       for layer, heads in by_layer]  # layer by layer, in forward order
            result = nnsight.save({"reads": torch.cat(columns, dim=1),
                                   "top_token": view.model.output.logits[:, -1].argmax(-1)})
        read = [(layer, head) for layer, heads in by_layer for head in heads]
        order = [read.index((layer, head)) for layer, head, _ in plan.picks]
        reads, top_token = to_host(result["reads"])[:, order], to_host(result["top_token"])
        attention = _unpadded(reads, encoded.roles)  # (B, reads, T)
        advance(1)
        return xr.Dataset(self._variables(plan, encoded, chunk, attention),
                          coords={**sample_coords(chunk, decide(top_token, space)), **_head_coords(plan),
                                  "position": np.arange(attention.shape[2])})

    def _variables(self, plan: ImageAttentionPlan, encoded: Any, chunk: Sequence[TracedSample],
                   attention: np.ndarray) -> dict[str, Any]:
        n_boxes = plan.config["n_boxes"]
        region, visual = np.full(attention.shape[:2], np.nan), np.full(attention.shape[:2], np.nan)
        counts, n_image = np.full(len(chunk), -1), np.zeros(len(chunk), dtype=int)
        boxes, box_mass = np.full((len(chunk), n_boxes, 4), np.nan), np.full((len(chunk), attention.shape[1], n_boxes), np.nan)
        for row, sample in enumerate(chunk):
            codes = encoded.roles[row][encoded.roles[row] != ROLE_CODE["pad"]].numpy()
            image = np.flatnonzero(np.isin(codes, [ROLE_CODE[r] for r in VISUAL_PARTS]))
            visual[row], n_image[row] = attention[row][:, image].sum(-1), len(image)
            if sample.prompt.region is None or not len(encoded.geometry):
                continue
            geometry = encoded.image_geometry(row)
            inside = codes[image] == ROLE_CODE["region"]  # as the encoding labelled the box's tokens
            counts[row] = inside.sum()
            if not 0 < counts[row] < len(inside):
                continue  # a box over none or all of the image is no region: left NaN, its count says why
            region[row] = attention[row][:, image[inside]].sum(-1)
            found = sample_matched_boxes(geometry, sample.prompt.region, n_boxes, plan.config["seed"], sample.sample_id)
            boxes[row, :len(found)] = found
            for draw, box in enumerate(found):
                box_mass[row, :, draw] = attention[row][:, image[geometry.overlapping(box)]].sum(-1)
        real = ~np.isnan(attention)
        uniform = 1.0 / real.sum(-1, keepdims=True)
        return {
            "attention": (("sample", "head_read", "position"), attention),
            "visual_mass": (("sample", "head_read"), visual),
            "region_mass": (("sample", "head_read"), region),
            "image_tokens": ("sample", n_image),
            "region_tokens": ("sample", counts),
            "matched_box_mass": (("sample", "head_read", "box_draw"), box_mass),
            "matched_box": (("sample", "box_draw", "corner"), boxes),
            "sink": (("sample", "head_read", "position"),
                     np.where(real, attention >= plan.config["sink_factor"] * uniform, np.nan)),
        }

    def finalise(self, plan: ImageAttentionPlan, merged: xr.Dataset) -> xr.Dataset:
        return with_image_attention_aggregates(merged)


def matched_random_heads(top: Sequence[int], others: Sequence[int], n_heads: int, per_head: int,
                         rng: np.random.Generator) -> list[int]:
    """``per_head`` random heads (flat indices) for each of ``top``: from its own layer while that
    layer has heads of ``others`` left, then from all of ``others`` (the top heads of a small model
    can fill a layer).

    >>> matched_random_heads([0, 1], [2, 3, 4, 5], n_heads=4, per_head=1, rng=np.random.default_rng(0))
    [3, 2]"""
    left, drawn = list(others), []
    for head in top:
        for _ in range(per_head):
            if not left:
                return drawn
            same = [h for h in left if h // n_heads == head // n_heads]
            pick = int(rng.choice(same or left))
            drawn.append(pick)
            left.remove(pick)
    return drawn


def _unpadded(values: torch.Tensor, roles: torch.Tensor) -> np.ndarray:
    """(B, reads, T) attention over the padded batch's keys → each row's prompt positions only (as
    the ``samples`` group numbers them), right-padded with NaN."""
    rows = [values[b][:, roles[b] != ROLE_CODE["pad"]].numpy() for b in range(len(values))]
    width = max(r.shape[1] for r in rows)
    return np.stack([np.pad(r, ((0, 0), (0, width - r.shape[1])), constant_values=np.nan) for r in rows])


def _head_coords(plan: ImageAttentionPlan) -> dict[str, Any]:
    names = [f"L{layer}.H{head}" for layer, head, _ in plan.picks]
    return {"head_read": names, "head_layer": ("head_read", [p[0] for p in plan.picks]),
            "head_index": ("head_read", [p[1] for p in plan.picks]), "head_selection": ("head_read", [p[2] for p in plan.picks])}


def with_image_attention_aggregates(ds: xr.Dataset) -> xr.Dataset:
    """``mass_by_layer`` (selection, layer, part): the mean over samples with a region and over that
    selection's heads at each layer of the attention mass on the ``region``, on ``off_region`` and on the
    matched boxes (mean over draws); ``region_excess`` (sample, head_read): region mass minus its
    matched boxes' mean; ``sink_rate`` (head_read, position): how often each position is a sink."""
    parts = attention_parts(ds)
    layers = sorted(set(ds.head_layer.values.tolist()))
    table = np.full((len(SELECTIONS), len(layers), len(PARTS)), np.nan)
    for k, selection in enumerate(SELECTIONS):
        for j, layer in enumerate(layers):
            chosen = (ds.head_selection == selection) & (ds.head_layer == layer)
            if bool(chosen.any()):
                table[k, j] = parts.isel(head_read=chosen.values).mean(("sample", "head_read"), skipna=True).values
    out = ds.drop_vars(["mass_by_layer", "region_excess", "sink_rate"], errors="ignore")
    out = out.assign_coords(selection=list(SELECTIONS), layer=layers, part=list(PARTS))
    out["mass_by_layer"] = (("selection", "layer", "part"), table)
    out["region_excess"] = ds.region_mass - parts.sel(part="matched_box", drop=True)
    out["sink_rate"] = ds.sink.mean("sample", skipna=True)
    return out
