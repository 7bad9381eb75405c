"""Issue 24's findings on the organisms (docs/explanation/regions.md):

1. Does cutting ``region -> instruction`` (and ``region -> off_region``, since the language model
   mixes image tokens among themselves), or the region's attention from every later token, move
   the answer more than the same cuts of matched random boxes (same size, as many image tokens,
   elsewhere: ``anchors data matched-regions``)? Each cut spans all six layers; the whole image's
   cut and the off-region's are the references.
2. How far does the vision encoder spread the shape into tokens whose rectangles miss it (the
   relative change of their language-model input when the box is blanked)?
3. Do the top vision-following heads (Eq 9) put more attention on the shape than on matched boxes,
   and more so than random heads of the same layers?

Each on held-in and held-out wordings, for the Qwen2.5-VL organism (112-pixel images: 16 image
tokens) and the LLaVA one (its own 56 pixels: 16 tokens). Every step is an ``anchors`` command,
run in this process and printed; the tables are means over samples with 95% confidence intervals
(1.96 standard errors), paired where they compare two cuts of one sample.

    .venv/bin/python benchmarks/organism_regions.py [OUT]
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from anchors.cli import main
from anchors.datasets.matched_regions import original_id
from anchors.results.netcdf import load_result

ORGANISMS = {"organism:qwen2_5_vl": 112, "organism:llava": 56}  # model -> image size giving 16 image tokens
LATER = "template+context+question+instruction+generated"  # every role after the image in the organism's prompts
REGION_PATHWAYS = ("region->instruction+off_region", f"region->{LATER}+off_region")
PATHWAYS = REGION_PATHWAYS + (f"off_region->{LATER}+region", f"visual->{LATER}")
SAMPLES = 64  # per wording split
DEPTH = ("--windows", "11", "--layers", "3")  # one cut through all 6 layers (layers 3-5 … 3+5, clipped)


def anchors(*argv: str) -> None:
    print("$ anchors " + shlex.join(argv), flush=True)
    if main([*argv, "--quiet"]) != 0:
        raise SystemExit(f"anchors {argv[0]} failed")


def interval(values: np.ndarray) -> str:
    values = values[np.isfinite(values)]
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():+.4f} [{values.mean() - half:+.4f}, {values.mean() + half:+.4f}] (n={len(values)})"


def knockout_rows(region: xr.Dataset, matched: xr.Dataset) -> list[str]:
    """Per pathway and wording split, on followed samples: the cut's mean NSSD, the share still
    following after it, and (region cuts) the paired difference from the mean of the same sample's
    matched-box cuts."""
    control = matched.nssd.groupby(xr.DataArray([original_id(s) for s in matched.sample.values], dims="sample",
                                                name="sample")).mean().squeeze(("window", "layer"))
    rows = []
    for pathway in PATHWAYS:
        for style in ("held_in", "held_out"):
            chosen = region.where((region["style"] == style) & region.followed, drop=True).sel(pathway=pathway)
            cut = chosen.nssd.squeeze(("window", "layer"))
            still = float((chosen.answer_after == "compliant").mean())
            paired = (interval((cut - control.sel(pathway=pathway, sample=cut.sample)).values)
                      if pathway in REGION_PATHWAYS else "—")
            rows.append(f"| `{pathway}` | {style} | {interval(cut.values)} | {still:.3f} | {paired} |")
    return rows


def mixing_rows(model: str, data: Path) -> list[str]:
    """How far the vision encoder spreads the shape: the relative change of each image token's
    language-model input when the pixels inside the region box are replaced by the image's mean
    colour outside it, for region and off-region tokens (per sample, the mean over its tokens)."""
    import torch
    from PIL import Image

    from anchors import view as bind
    from anchors.datasets.build import sample_prompt
    from anchors.datasets.folder import DataFolder

    view, folder = bind(model), DataFolder.open(data)
    change: dict[str, list[float]] = {"region": [], "off_region": []}
    for sample in folder.samples:
        prompt = sample_prompt(sample)
        pixels = np.asarray(prompt.image).copy()
        x0, y0, x1, y1 = (int(v) for v in prompt.region)
        outside = np.ones(pixels.shape[:2], dtype=bool)
        outside[y0:y1, x0:x1] = False
        pixels[y0:y1, x0:x1] = pixels[outside].mean(0).astype(pixels.dtype)
        batch = view.encode([prompt, dataclasses.replace(prompt, image=Image.fromarray(pixels))])
        with torch.no_grad(), view.trace(batch):
            inputs = view.read("resid_pre", 0).save()
        for role in change:
            at = batch.positions(0, role)
            before, after = inputs[0, at], inputs[1, at]
            change[role].append(float(((after - before).norm(dim=-1) / before.norm(dim=-1)).mean()))
    return [f"| {role} | {interval(np.array(values))} |" for role, values in change.items()]


def attention_rows(seen: xr.Dataset) -> list[str]:
    """Per wording split: region minus matched-box mass for the targeted and random heads (mean over
    each sample's heads of that selection), and their paired difference."""
    rows = []
    for style in ("held_in", "held_out"):
        part = seen.where(seen["style"] == style, drop=True)
        excess = {s: part.region_excess.isel(head_read=(part.head_selection == s).values).mean("head_read")
                  for s in ("targeted", "random")}
        rows.append(f"| {style} | {interval(excess['targeted'].values)} | {interval(excess['random'].values)} | "
                    f"{interval((excess['targeted'] - excess['random']).values)} |")
    return rows


def run(out: Path) -> None:
    for model, size in ORGANISMS.items():
        name = model.split(":")[1]
        folder = out / name
        data, controls = folder / "data", folder / "matched"
        anchors("organism", "data", "--out", str(data), "--samples", str(SAMPLES), "--image-size", str(size))
        anchors("data", "matched-regions", "--model", model, "--data", str(data), "--out", str(controls), "--draws", "4")
        anchors("lens", "--model", model, "--data", str(data), "--out", str(folder / "lens.nc"))
        anchors("knockout", "--model", model, "--data", str(data), "--pathways", *PATHWAYS, *DEPTH,
                "--out", str(folder / "knockout_region.nc"))
        anchors("knockout", "--model", model, "--data", str(controls), "--pathways", *REGION_PATHWAYS, *DEPTH,
                "--out", str(folder / "knockout_matched.nc"))
        anchors("image-attention", "--model", model, "--data", str(data), "--lens", str(folder / "lens.nc"),
                "--out", str(folder / "image_attention.nc"))
        region, matched = load_result(folder / "knockout_region.nc"), load_result(folder / "knockout_matched.nc")
        seen = load_result(folder / "image_attention.nc")
        print(f"\n### {model} ({size}-pixel images)\n")
        print(f"Excluded from the region knockouts: {region.attrs.get('excluded_samples', 'none')}\n")
        print("| pathway (all layers cut) | wording | mean NSSD | still following | region minus matched boxes |")
        print("| --- | --- | --- | --- | --- |")
        print("\n".join(knockout_rows(region, matched)))
        print("\n| image tokens | relative change of their input when the box is blanked |\n| --- | --- |")
        print("\n".join(mixing_rows(model, data)))
        heads = ", ".join(str(h) for h in seen.head_read.values[(seen.head_selection == "targeted").values])
        print(f"\nTargeted heads (top 8 of the vision ranking): {heads}\n")
        print("| wording | targeted: region minus matched | random: region minus matched | targeted minus random |")
        print("| --- | --- | --- | --- |")
        print("\n".join(attention_rows(seen)) + "\n", flush=True)


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/organism-regions"))
