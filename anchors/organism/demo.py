"""``anchors demo``: the whole paper on the shipped organism, into one run directory."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..datasets import save_dictionaries, save_samples, to_traced, tokenise
from ..datasets.instructions import GENERAL_SYSTEM_PROMPT, ModalitySample
from ..report import write_report
from ..tracer import experiments as ex
from ..tracer.results import save
from . import load_organism
from .task import dictionaries, evaluation_set, to_modality_samples

DEMO_WINDOWS = (3, 1, 5)
CONTROL_VARIANTS = ("default", "swapped", "system_before", "system_between")


def control_variant(sample: ModalitySample, variant: str) -> ModalitySample:
    """The organism sample with its instruction rearranged as in App. C.2 (same sample id)."""
    parts = dict(sample.segments)
    semantic, fmt = ("instruction_semantic", parts["instruction_semantic"]), ("instruction_format", parts["instruction_format"])
    system = ("system", GENERAL_SYSTEM_PROMPT)
    head = tuple(s for s in sample.segments if s[0] in ("context", "question"))
    tail = {"default": (semantic, fmt), "swapped": (fmt, semantic), "system_before": (system, semantic, fmt),
            "system_between": (semantic, system, fmt)}[variant]
    return dataclasses.replace(sample, segments=head + tail, variant=variant)


def run_demo(out: str | Path, *, n_samples: int = 128, batch_size: int = 32, reporter: Any) -> Path:
    """Write data, NetCDF results, figures and ``report.html`` into ``out``; returns the report path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loaded = load_organism()
    data = out / "data"
    samples = (to_modality_samples(evaluation_set(n_samples, 1001, held_out=False, prefix="in"), data / "images")
               + to_modality_samples(evaluation_set(n_samples, 2002, held_out=True, prefix="out"), data / "images"))
    save_samples(data / "samples.jsonl", samples)
    save_dictionaries(data / "dictionaries.jsonl", dictionaries().values())
    kept, coverage = tokenise(samples, dictionaries(), loaded.adapter.tokenizer)
    reporter.log(f"{len(samples)} samples ({n_samples} held-in, {n_samples} held-out wordings); {coverage.summary()}")
    traced = to_traced(kept)
    n_layers = loaded.adapter.shape.n_layers
    n_heads = n_layers * loaded.adapter.shape.n_heads

    def stage(name: str, total: int, run, unit: str = "samples"):
        with reporter.progress(name, total, unit=unit) as advance:
            done = [0]

            def on_batch(now: int, all_: int) -> None:
                advance(now - done[0])
                done[0] = now

            return run(on_batch)

    # The paper reads and intervenes at instruction tokens; the organism's knockout profile puts its
    # arbitration at the answer position, so both are run and reported.
    sites = {"": "instruction", "_answer": "generated"}
    lenses = {}
    for suffix, role in sites.items():
        lenses[suffix] = stage(f"lens profile ({role})", len(traced), lambda cb, role=role: ex.lens_profile(
            loaded, traced, top_k=5, readout_role=role, batch_size=batch_size, on_batch=cb))
        save(lenses[suffix], out / f"lens{suffix}.nc")
    knockout_samples = traced[: n_samples // 2] + traced[n_samples : n_samples + n_samples // 2]
    knockout = stage("knockout profile", len(knockout_samples), lambda cb: ex.knockout_profile(
        loaded, knockout_samples, windows=DEMO_WINDOWS, batch_size=batch_size, on_batch=cb))
    save(knockout, out / "knockout.nc")
    held_in = [s for s in samples if s.sample_id.startswith("in")][: n_samples // 4]
    variants = {}
    for variant in CONTROL_VARIANTS:
        chosen = [control_variant(s, variant) for s in held_in]
        variants[variant] = to_traced(tokenise(chosen, dictionaries(), loaded.adapter.tokenizer)[0])
    controls = stage("position controls", len(variants), lambda cb: ex.position_controls(
        loaded, variants, window=3, batch_size=batch_size, on_batch=cb), unit="variants")
    save(controls, out / "controls.nc")
    ks = tuple(k for k in (1, 2, 4, 8, 12) if k <= n_heads // 4)
    for suffix, role in sites.items():
        heads = stage(f"head interventions ({role})", 2 * len(ks) * 7 + 6, lambda cb, role=role, lens=lenses[suffix]: ex.head_intervention(
            loaded, traced, lens, ks=ks, amplify_alpha=4.0, alphas=(0.5, 1.0, 2.0, 4.0, 8.0, 16.0),
            alpha_k=max(ks), n_random=5, role=role, batch_size=batch_size, on_batch=cb), unit="settings")
        save(heads, out / f"heads{suffix}.nc")
    (out / "demo.json").write_text(json.dumps({"n_samples": n_samples, "batch_size": batch_size,
                                               "windows": DEMO_WINDOWS, "ks": ks}, indent=1))
    return write_report(out)
