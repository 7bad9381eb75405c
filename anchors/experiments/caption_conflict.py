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
from .base import Advance, RankedHeadsAnalysis, check_layers, positive
from .configs import CaptionConflictConfig
from .knockout import parse_pathway

SEMANTIC = "Describe what the image itself shows, whatever the text says."
FORMAT = "Answer in one sentence."


def mentions(caption: str, entity: str) -> bool:
    """Whether ``caption`` names ``entity`` (whole words, case-insensitive)."""
    return re.search(rf"\b{re.escape(entity.lower())}\b", caption.lower()) is not None


class CaptionConflict(RankedHeadsAnalysis[CapabilityItem]):
    """Needs a head ranking: the lens result whose top vision-following heads are amplified."""

    experiment = "caption_conflict"
    Config = CaptionConflictConfig
    unit = "settings"

    def items(self, samples: Any) -> list[CapabilityItem]:
        items = list(samples)
        wrong = [i.sample_id for i in items if i.task != "caption_conflict"]
        if wrong:
            raise InputError(f"sample {wrong[0]} is not a caption_conflict record (it needs context and entity)")
        return items

    def resolve(self, adapter: Adapter) -> dict[str, Any]:
        self.check_ranking(adapter)
        config, shape = self.config, adapter.shape
        self.pathways = {name: parse_pathway(name) for name in config.pathways}
        self.layers = check_layers(config.layers, shape)
        positive(config.window, "window")
        positive(config.max_new_tokens, "max_new_tokens")
        self.ks = self.head_counts(adapter, config.ks)
        order, pool = self.softmax_heads(adapter, "vision")
        rng = np.random.default_rng(config.seed)
        self.n_heads = shape.n_heads
        self.runs: list[tuple[dict[str, Any], list[Intervention]]] = [(self._label("none"), [])]
        for name, (source, target) in self.pathways.items():
            self.runs += [(self._label("knockout", pathway=name, layer=layer),
                           [Knockout(source, target, layer, config.window)]) for layer in self.layers]
        for k in self.ks:
            self.runs.append((self._label("targeted", k=k), self._amplify(order[:k])))
            self.runs += [(self._label("random", k=k, draw=d), self._amplify(rng.choice(pool, size=k, replace=False)))
                          for d in range(config.n_random)]
        return {**{f: getattr(config, f) for f in ("window", "alpha", "n_random", "seed", "max_new_tokens")},
                "pathways": list(self.pathways), "layers": list(self.layers), "ks": list(self.ks)}

    @staticmethod
    def _label(kind: str, pathway: str = "", layer: int = -1, k: int = 0, draw: int = -1) -> dict[str, Any]:
        return {"kind": kind, "pathway": pathway, "layer": layer, "k": k, "draw": draw}

    def _amplify(self, flat: Sequence[int]) -> list[Intervention]:
        heads = tuple((int(h) // self.n_heads, int(h) % self.n_heads) for h in flat)
        return [HeadScale(heads, self.config.alpha, role="instruction")]

    def prompts(self, item: CapabilityItem) -> list[Prompt]:
        return [self.prompt(item)]

    def prompt(self, item: CapabilityItem) -> Prompt:
        segments = (("context", item.context), ("instruction_semantic", SEMANTIC), ("instruction_format", FORMAT))
        return Prompt(item.sample_id, segments, image=Image.open(item.image).convert("RGB"))

    def steps(self, chunk: Sequence[CapabilityItem]) -> int:
        return len(self.runs)

    def run_batch(self, loaded: LoadedModel, chunk: Sequence[CapabilityItem], advance: Advance) -> xr.Dataset:
        encoded = encode_batch(loaded.adapter, [self.prompt(item) for item in chunk])
        space = Subspaces.from_ids(encoded.sample_ids, [[0]] * len(chunk), [[1]] * len(chunk))
        tokenizer = loaded.adapter.tokenizer
        captions = np.full((len(chunk), len(self.runs)), "", dtype=object)
        for s, (_, spec) in enumerate(self.runs):
            tokens = generate_batch(loaded, encoded, space, spec, max_new_tokens=self.config.max_new_tokens).tokens
            captions[:, s] = [tokenizer.decode(row, skip_special_tokens=True).strip() for row in tokens.tolist()]
            advance(1)
        entity = np.array([[mentions(c, item.entity) for c in row] for row, item in zip(captions, chunk)])
        labels = {name: ("setting", [label[name] for label, _ in self.runs]) for name in self.runs[0][0]}
        return xr.Dataset(
            {"caption": (("sample", "setting"), captions), "mentions_entity": (("sample", "setting"), entity),
             "references": ("sample", ["\n".join(i.references) for i in chunk]),
             "entity": ("sample", [i.entity for i in chunk])},
            coords={"sample": [i.sample_id for i in chunk], "setting": np.arange(len(self.runs)), **labels},
        )

    def finalise(self, merged: xr.Dataset) -> xr.Dataset:
        references = {s: str(r).split("\n") for s, r in zip(merged.sample.values, merged.references.values)}
        metrics = {name: np.full(merged.caption.shape, np.nan) for name in ("cider_d", "bleu_4", "meteor")}
        for s in range(merged.sizes["setting"]):
            column = [c or "." for c in merged.caption.values[:, s]]
            for name, values in caption_scores(dict(zip(merged.sample.values, column)), references).items():
                metrics[name][:, s] = values
        for name, values in metrics.items():
            merged[name] = (("sample", "setting"), values)
        merged["entity_rate"] = merged.mentions_entity.mean("sample")
        return merged
