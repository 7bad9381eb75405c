"""``anchors demo``: the whole paper on the shipped organism, into one run directory, through the
same runner as every command (so an interrupted demo resumes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from ..datasets.folder import DataFolder
from ..experiments import HeadIntervention, ImageAttention, KnockoutProfile, LensProfile, PositionControls
from ..models.organisms import ORGANISMS
from ..models.spec import ModelSpec
from ..presets import command_options
from ..report import write_report
from ..report.explorer import write_explorer
from ..runner.resumable import Progress, no_progress, run
from .capability import agreement_capability
from .task import write_data

PRESET = "organism"  # anchors/presets/organism.toml: windows, k's and alphas
CONTROL_VARIANTS = ("default", "swapped", "system_before", "system_between")
# The paper reads and intervenes at instruction tokens; the organism's knockout profile puts its
# arbitration at the answer position, so both are run and reported.
READOUT_SITES = {"": "instruction", "_answer": "generated"}
# Where the top heads look in the picture needs more than the organism's 4 image tokens: the same
# kind of data at twice the size (16 tokens), in its own folder beside the main one.
REGION_IMAGE_SIZE = 112


def run_demo(out: str | Path, *, n_samples: int = 128, batch_size: int = 32, organism: str = ORGANISMS[0],
             progress: Progress = no_progress, log: Callable[[str], None] = lambda message: None) -> Path:
    """Write data, NetCDF results, figures, the explorer (``explore.html``) and ``report.html`` for a
    shipped ``organism`` into ``out``; returns the report path."""
    out = Path(out)
    model = ModelSpec(f"organism:{organism}")
    data = DataFolder.open(write_data(out / "data", n_samples, control_variants=CONTROL_VARIANTS,
                                      n_controls=n_samples // 4))
    tokenizer, shape = model.adapter().tokenizer, model.adapter().shape
    traced = data.traced(tokenizer, log=log)
    log(f"{len(traced)} samples ({n_samples} held-in, {n_samples} held-out wordings)")
    common = dict(batch_size=batch_size, progress=progress, log=log)
    lenses = {suffix: run(LensProfile(readout_role=role), model, traced, out=out / f"lens{suffix}.nc", **common)
              for suffix, role in READOUT_SITES.items()}
    half = n_samples // 2
    knockout = command_options(PRESET, "knockout")
    run(KnockoutProfile(**knockout), model, traced[:half] + traced[n_samples : n_samples + half],
        out=out / "knockout.nc", **common)
    run(PositionControls(**command_options(PRESET, "controls")), model,
        data.variants(tokenizer, CONTROL_VARIANTS, log=log), out=out / "controls.nc", **common)
    intervene = command_options(PRESET, "intervene")
    ks = tuple(k for k in intervene.pop("ks") if k <= shape.n_layers * shape.n_heads // 4)  # at most a quarter
    for suffix, role in READOUT_SITES.items():
        analysis = HeadIntervention(lenses[suffix], ks=ks, role=role, **intervene)
        run(analysis, model, traced, out=out / f"heads{suffix}.nc", **common)
        # the capability check beside it: agreeing examples with the same heads blocked at the same site
        agreement = out / f"agreement{suffix}.nc"
        if not agreement.exists():
            agreement_capability(model.load(), lenses[suffix], ks, n=n_samples, n_random=intervene["n_random"],
                                 role=role, out=agreement)
    regions = DataFolder.open(write_data(out / "data_regions", n_samples // 2, image_size=REGION_IMAGE_SIZE))
    run(ImageAttention(lenses[""]), model, regions.traced(tokenizer, log=log), out=out / "image_attention.nc", **common)
    (out / "demo.json").write_text(json.dumps({"organism": organism, "n_samples": n_samples, "batch_size": batch_size,
                                               "preset": PRESET, "windows": knockout["windows"], "ks": ks}, indent=1))
    write_explorer(out, log=log)
    return write_report(out)
