"""Synthetic run directories for the explorer: lens and knockout results with random values and a
``samples`` group, at any size (a paper-scale run without tracing a 7B model) and with data that
tries to script the page (markup in the context, answer, sample id and tokens)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr
from PIL import Image

from anchors.results.netcdf import SCHEMA_VERSION, save

PATHWAYS = ("visual->instruction", "context->instruction", "visual->generated", "context->generated",
            "instruction->generated", "visual->context")
HOSTILE = {"context": "<script>alert(1)</script>", "answer": '"><img src=x onerror=alert(2)>',
           "tokens": ("<image>", "<br>")}


def _coords(ids: list[str], rng: np.random.Generator, task: str) -> dict:
    answers = rng.choice(["compliant", "competing", "other"], size=len(ids), p=[0.7, 0.25, 0.05])
    return {"sample": ids, "task": ("sample", [task] * len(ids)),
            "instructed": ("sample", ["text" if i % 2 == 0 else "vision" for i in range(len(ids))]),
            "style": ("sample", ["held_in" if i % 3 else "held_out" for i in range(len(ids))]),
            "answer": ("sample", answers.tolist()), "followed": ("sample", (answers == "compliant").tolist())}


def _attrs(experiment: str, config: dict) -> dict:
    return {"experiment": experiment, "config": json.dumps(config), "model": "synthetic", "model_type": "synthetic",
            "schema_version": SCHEMA_VERSION}


def _samples(ids: list[str], images: list[str], n_visual: int, hostile: bool) -> xr.Dataset:
    text = [("<|im_start|>", "template"), ("user", "template")] + [("<image>", "visual")] * n_visual
    words = ["<script>", "alert(1)", "</script>", "<br>"] if hostile else [" The", " ball", " is", " red", "."]
    text += [(w, "context") for w in words * (1 if hostile else 8)]
    text += [(" What", "question"), (" colour", "question"), ("?", "question"), (" Follow", "instruction_semantic"),
             (" the", "instruction_semantic"), (" text", "instruction_semantic"), ("\n", "generated")]
    n = len(text)
    forms = json.dumps([HOSTILE["answer"]] if hostile else ["red", "crimson"])
    return xr.Dataset({
        "token": (("sample", "position"), np.array([[t for t, _ in text]] * len(ids), dtype=object)),
        "token_role": (("sample", "position"), np.array([[r for _, r in text]] * len(ids), dtype=object)),
        "n_tokens": ("sample", [n] * len(ids)), "image": ("sample", np.array(images, dtype=object)),
        "variant": ("sample", np.array(["default"] * len(ids), dtype=object)),
        "compliant_forms": ("sample", np.array([forms] * len(ids), dtype=object)),
        "competing_forms": ("sample", np.array([json.dumps(["blue"])] * len(ids), dtype=object)),
    }, coords={"sample": ids})


def synthetic_run(folder: Path, n_samples: int, n_layers: int, n_heads: int, *, n_visual: int = 16,
                  hostile: bool = False, seed: int = 0) -> Path:
    """A run directory with ``lens.nc`` and ``knockout.nc`` (window 3, :data:`PATHWAYS`) of
    ``n_samples`` samples and images; ``hostile``: every text that comes from data holds markup."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f'<b id="x">s{i}</b>' if hostile else f"s{i:05d}" for i in range(n_samples)]
    (folder / "images").mkdir(exist_ok=True)
    image = '"><img src=y onerror=alert(3)>.png' if hostile else "shared.png"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / "images" / image)
    images = [f"images/{image}"] * n_samples
    coords = _coords(ids, rng, "<i>task</i>" if hostile else "color")
    if hostile:  # the answer as data would spell it, markup included
        coords["answer"] = ("sample", [HOSTILE["answer"]] * n_samples)
    samples = _samples(ids, images, n_visual, hostile)
    layers = np.arange(n_layers)
    lens = xr.Dataset({
        "margin": (("sample", "layer", "site"), rng.normal(size=(n_samples, n_layers, 3))),
        "readout_generated": (("sample", "layer", "site", "subspace"), rng.normal(size=(n_samples, n_layers, 3, 2))),
        "head_attribution": (("sample", "layer", "head"), rng.normal(size=(n_samples, n_layers, n_heads))),
        "final_margin": ("sample", rng.normal(size=n_samples)),
    }, coords={**coords, "layer": layers, "head": np.arange(n_heads), "site": ["pre", "mid", "post"],
               "subspace": ["compliant", "competing"]}, attrs=_attrs("lens_profile", {"readout_role": "instruction"}))
    knockout = xr.Dataset({
        "nssd": (("sample", "pathway", "window", "layer"), rng.normal(scale=0.1, size=(n_samples, len(PATHWAYS), 1, n_layers))),
    }, coords={**coords, "pathway": list(PATHWAYS), "window": [3], "layer": layers},
        attrs=_attrs("knockout_profile", {"main_window": 3, "windows": [3]}))
    save(lens, folder / "lens.nc", {"samples": samples})
    save(knockout, folder / "knockout.nc")  # the explorer reads each sample's tokens once: lens.nc's
    return folder
