"""Captioning under misleading text (App. D, Tables 2–3): an image, a text that names the wrong
thing, and an instruction to describe the image. Greedy captions under (a) knockouts of chosen
pathways in windows around chosen layers (Table 2) and (b) amplification of the top
vision-following heads at the instruction tokens against as many random heads (Table 3), scored
with the caption metrics against the image's references and by how often a caption mentions the
misleading text's key entity.

Every setting is one entry of the ``setting`` axis, labelled (``kind``: none, knockout, targeted,
random; ``pathway``; ``layer``; ``k``; ``draw``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import xarray as xr
from PIL import Image

from ..datasets.capability import CapabilityItem
from ..errors import InputError
from ..interventions.specs import HeadScale, Intervention, Knockout
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import Prompt
from ..readouts.capability import caption_scores
from ..readouts.subspaces import Subspaces
from ..tracer.encode import encode_batch
from ..tracer.generate import generate_batch
from ..results.heads import split_heads
from .base import Advance, RankedHeadsAnalysis, Resolved, check_layers, draw_heads
from .configs import CaptionConflictConfig, parse_pathway

SEMANTIC = "Describe what the image itself shows, whatever the text says."
FORMAT = "Answer in one sentence."


def mentions(caption: str, entity: str) -> bool:
    """Whether ``caption`` names ``entity`` (whole words, case-insensitive)."""
    return re.search(rf"\b{re.escape(entity.lower())}\b", caption.lower()) is not None


LABELS: tuple[str, ...] = ("kind", "pathway", "layer", "k", "draw")


def label(kind: str, pathway: str = "", layer: int = -1, k: int = 0, draw: int = -1) -> tuple:
    """A setting's label, in :data:`LABELS` order."""
    return (kind, pathway, layer, k, draw)


@dataclass(frozen=True)
class CaptionConflictPlan(Resolved):
    """Caption conflict resolved against a model: every setting as (label, interventions)."""

    runs: tuple[tuple[tuple, tuple[Intervention, ...]], ...]
    config: dict[str, Any]

    def as_config(self) -> dict[str, Any]:
        return dict(self.config)


class CaptionConflict(RankedHeadsAnalysis[CapabilityItem]):
    """Needs a head ranking: the lens result whose top vision-following heads are amplified.

    >>> anchors.CaptionConflictConfig(pathways=("context->instruction",), ks=(2,)).pathways
    ('context->instruction',)"""

    experiment = "caption_conflict"
    Config = CaptionConflictConfig
    unit = "settings"

    def items(self, samples: Any) -> list[CapabilityItem]:
        items = list(samples)
        wrong = [i.sample_id for i in items if i.task != "caption_conflict"]
        if wrong:
            raise InputError(f"sample {wrong[0]} is not a caption_conflict record (it needs context and entity)")
        return items

    def resolve(self, adapter: Adapter, items: Sequence[CapabilityItem] = ()) -> CaptionConflictPlan:
        self.check_ranking(adapter)
        config, shape = self.config, adapter.shape
        config.check()
        pathways = {name: parse_pathway(name) for name in config.pathways}
        layers = check_layers(config.layers, shape)
        ks = self.head_counts(adapter, config.ks)
        order, pool = self.softmax_heads(adapter, "vision")
        rng = np.random.default_rng(config.seed)

        def amplify(flat: Sequence[int]) -> tuple[Intervention, ...]:
            return (HeadScale(split_heads(flat, shape.n_heads), config.alpha, role="instruction"),)

        runs: list[tuple[tuple, tuple[Intervention, ...]]] = [(label("none"), ())]
        for name, (source, target) in pathways.items():
            runs += [(label("knockout", pathway=name, layer=layer), (Knockout(source, target, layer, config.window),))
                     for layer in layers]
        for k in ks:
            runs.append((label("targeted", k=k), amplify(order[:k])))
            runs += [(label("random", k=k, draw=d), amplify(draw_heads(rng, pool, k))) for d in range(config.n_random)]
        resolved = {**{f: getattr(config, f) for f in ("window", "alpha", "n_random", "seed", "max_new_tokens")},
                    "pathways": list(pathways), "layers": list(layers), "ks": list(ks)}
        return CaptionConflictPlan(tuple(runs), resolved)

    def prompts(self, item: CapabilityItem) -> list[Prompt]:
        return [self.prompt(item)]

    def prompt(self, item: CapabilityItem) -> Prompt:
        segments = (("context", item.context), ("instruction_semantic", SEMANTIC), ("instruction_format", FORMAT))
        return Prompt(item.sample_id, segments, image=Image.open(item.image).convert("RGB"))

    def steps(self, plan: CaptionConflictPlan, chunk: Sequence[CapabilityItem]) -> int:
        return len(plan.runs)

    def run_batch(self, plan: CaptionConflictPlan, loaded: LoadedModel, chunk: Sequence[CapabilityItem],
                  advance: Advance) -> xr.Dataset:
        encoded = encode_batch(loaded.adapter, [self.prompt(item) for item in chunk])
        space = Subspaces.from_ids(encoded.sample_ids, [[0]] * len(chunk), [[1]] * len(chunk))
        tokenizer = loaded.adapter.tokenizer
        captions = np.full((len(chunk), len(plan.runs)), "", dtype=object)
        for s, (_, spec) in enumerate(plan.runs):
            tokens = generate_batch(loaded, encoded, space, list(spec), max_new_tokens=self.config.max_new_tokens).tokens
            captions[:, s] = [tokenizer.decode(row, skip_special_tokens=True).strip() for row in tokens.tolist()]
            advance(1)
        entity = np.array([[mentions(c, item.entity) for c in row] for row, item in zip(captions, chunk)])
        labels = {name: ("setting", [setting[i] for setting, _ in plan.runs]) for i, name in enumerate(LABELS)}
        return xr.Dataset(
            {"caption": (("sample", "setting"), captions), "mentions_entity": (("sample", "setting"), entity),
             "references": ("sample", ["\n".join(i.references) for i in chunk]),
             "entity": ("sample", [i.entity for i in chunk])},
            coords={"sample": [i.sample_id for i in chunk], "setting": np.arange(len(plan.runs)), **labels},
        )

    def finalise(self, plan: CaptionConflictPlan, merged: xr.Dataset) -> xr.Dataset:
        references = {s: str(r).split("\n") for s, r in zip(merged.sample.values, merged.references.values)}
        metrics = {name: np.full(merged.caption.shape, np.nan) for name in ("cider_d", "bleu_4", "meteor")}
        columns = [dict(zip(merged.sample.values, [c or "." for c in merged.caption.values[:, s]]))
                   for s in range(merged.sizes["setting"])]
        for s, scored in enumerate(caption_scores(columns, references)):
            for name, values in scored.items():
                metrics[name][:, s] = values
        for name, values in metrics.items():
            merged[name] = (("sample", "setting"), values)
        merged["entity_rate"] = merged.mentions_entity.mean("sample")
        return merged
