"""Where an organism's route runs, measured by the toolkit with no constraint at run time: the
summary that tells the planted ``anchored`` organism from the plain ones (docs/explanation/organism.md, tests)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..datasets.folder import DataFolder
from ..models.organisms import organism_path
from ..models.spec import ModelSpec

from ..experiments import KnockoutProfile, LensProfile, rank_heads
from ..interventions.specs import Knockout
from ..models.loading import LoadedModel
from ..prompts.prompt import TracedSample
from ..readouts.metrics import decide
from ..runner.resumable import run
from ..tracer.batching import batches
from ..tracer.trace import trace_batch
from .task import write_data

PATHWAYS = ("visual+context->instruction", "instruction->generated", "visual+context->generated")


def following_ratio(loaded: LoadedModel, samples: Sequence[TracedSample], cuts: Sequence[Knockout] = (),
                    batch_size: int = 64) -> float:
    """MFR with the attention edges of ``cuts`` removed."""
    answers = []
    for batch in batches(loaded.adapter, samples, batch_size):
        answers += decide(trace_batch(loaded, batch.encoded, batch.subspaces, list(cuts)).top_token, batch.subspaces)
    return float(np.mean([a == "compliant" for a in answers]))


def route_summary(loaded: LoadedModel, samples: Sequence[TracedSample], batch_size: int = 64) -> dict[str, Any]:
    """Per pathway, the layer (window 1) where cutting it hurts followed samples most and that mean
    NSSD; MFR with no cut, with cues → answer position cut in every layer and with instruction →
    answer position cut in the upper half (on all samples, and on the followed ones); LDAR at
    instruction tokens in the last layer (followed); the layers of each modality's top 5 heads."""
    n_layers = loaded.adapter.shape.n_layers
    half, everywhere = n_layers // 2, 2 * n_layers + 1
    knockout = run(KnockoutProfile(pathways=PATHWAYS, windows=(1,)), loaded, samples, batch_size=batch_size)
    followed = knockout.where(knockout.followed, drop=True).nssd.sel(window=1).mean("sample")
    lens = run(LensProfile(), loaded, samples, batch_size=batch_size)
    ranked = rank_heads(lens)
    upper = [Knockout("instruction", "generated", layer, 1) for layer in range(half, n_layers)]
    kept = [s for s, f in zip(samples, knockout.followed.values) if f]
    return {
        "layers": n_layers,
        "most_negative_nssd": {p: {"layer": int(followed.sel(pathway=p).argmin("layer")),
                                   "nssd": round(float(followed.sel(pathway=p).min()), 4)} for p in PATHWAYS},
        "mfr": round(following_ratio(loaded, samples, batch_size=batch_size), 4),
        "mfr_cut_cues_to_answer_all_layers": round(following_ratio(
            loaded, samples, [Knockout(("visual", "context"), "generated", 0, everywhere)], batch_size), 4),
        "mfr_cut_instruction_to_answer_upper_half": round(following_ratio(loaded, samples, upper, batch_size), 4),
        # on the samples followed without a cut (MFR 1 before), so 1 - value is the drop
        "followed_mfr_cut_cues_to_answer_all_layers": round(following_ratio(
            loaded, kept, [Knockout(("visual", "context"), "generated", 0, everywhere)], batch_size), 4),
        "followed_mfr_cut_instruction_to_answer_upper_half": round(following_ratio(loaded, kept, upper, batch_size), 4),
        "ldar_instruction_last_layer": round(float(lens.ldar.sel(outcome="followed").isel(layer=-1)), 4),
        "top5_head_layers": {str(m): sorted(int(l) for l in ranked.ranking_layer.sel(modality=m).values[:5])
                             for m in ranked.modality.values},
    }


ROUTE_SAMPLES = 64  # held-in and held-out conflicting examples each, from organism.task.write_data


def measure_route(name: str) -> dict[str, Any]:
    """:func:`route_summary` of the shipped organism ``name`` on the fixed evaluation samples."""
    with tempfile.TemporaryDirectory() as folder:
        spec = ModelSpec(f"organism:{name}")
        traced = DataFolder.open(write_data(Path(folder) / "data", ROUTE_SAMPLES)).traced(spec.adapter().tokenizer)
        return route_summary(spec.load(), traced)


def record_route(name: str) -> dict[str, Any]:
    """Measure the route of a shipped organism and store it in its ``organism.json`` (``route``)."""
    path = organism_path(name) / "organism.json"
    record = json.loads(path.read_text())
    record["route"] = measure_route(name)
    path.write_text(json.dumps(record, indent=2))
    return record["route"]
