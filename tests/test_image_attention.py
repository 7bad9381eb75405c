"""Attention to the image (``anchors image-attention``): each head read's attention from the
instruction tokens equals the eager model's own ``output_attentions`` per sample, unpadded (1e-5),
though the batch is padded and the model runs sdpa; region and matched-box masses are sums of it
over the tokens the geometry names; control boxes cover as many tokens elsewhere; the overlays and
the population figure draw from the saved file and the data folder alone (without torch:
``tests/test_architecture.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForImageTextToText

import anchors
from anchors.cli import main
from anchors.datasets.folder import DataFolder
from anchors.datasets.matched_regions import original_id
from anchors.errors import InputError
from anchors.experiments.image_attention import matched_random_heads
from anchors.models.organisms import organism_path
from anchors.organism.task import write_data
from anchors.report.figures import render
from anchors.results.netcdf import load_result
from anchors.results.schema import config_of

TOL = 1e-5


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, list]:
    """An image-attention result of the organism on 112-pixel images (16 tokens each), batches of 4
    prompts of unequal length (so rows are padded), saved beside its data folder."""
    root = tmp_path_factory.mktemp("image_attention")
    data = DataFolder.open(write_data(root / "data", 4, image_size=112))
    samples = data.traced(anchors.ModelSpec("organism").adapter().tokenizer)
    lens = anchors.run(anchors.LensProfile(top_k=3), "organism", samples, out=root / "lens.nc")
    anchors.run(anchors.ImageAttention(lens, top_k=3, n_random=1, n_boxes=4), "organism", samples, batch_size=4,
                out=root / "image_attention.nc")
    return root / "image_attention.nc", samples


def test_each_head_reads_what_eager_output_attentions_says_for_the_sample_alone(saved):
    path, samples = saved
    ds = load_result(path, ["image_attention"])
    assert ds.attrs["attn_implementation"] == "sdpa"
    assert len({len(s.prompt.segments[0][1]) for s in samples}) > 1  # unequal prompts: the batches were padded
    eager = AutoModelForImageTextToText.from_pretrained(organism_path(), attn_implementation="eager").eval()
    view = anchors.view("organism")
    for sample in samples:
        alone = view.encode([sample.prompt])
        with torch.no_grad():
            every = eager(**alone.inputs, output_attentions=True).attentions
        queries, image = alone.positions(0, "instruction"), alone.positions(0, "visual")
        inside = alone.positions(0, "region")
        row = ds.sel(sample=sample.sample_id)
        for read in ds.head_read.values:
            layer, head = int(row.head_layer.sel(head_read=read)), int(row.head_index.sel(head_read=read))
            expected = every[layer][0, head][queries].mean(0)  # (T,) over the prompt's positions
            got = torch.from_numpy(row.attention.sel(head_read=read).values[:len(expected)]).to(expected.dtype)
            torch.testing.assert_close(got, expected, atol=TOL, rtol=0)
            assert np.isnan(row.attention.sel(head_read=read).values[len(expected):]).all()
            measured = row.sel(head_read=read)
            assert float(measured.visual_mass) == pytest.approx(float(expected[image].sum()), abs=TOL)
            assert float(measured.region_mass) == pytest.approx(float(expected[inside].sum()), abs=TOL)
            geometry = alone.image_geometry(0)
            for box, mass in zip(row.matched_box.values, measured.matched_box_mass.values):
                if np.isfinite(box).all():
                    covered = [image[k] for k in np.flatnonzero(geometry.overlapping(box))]
                    assert len(covered) == len(inside) and covered != inside
                    assert float(mass) == pytest.approx(float(expected[covered].sum()), abs=TOL)
        assert int(row.region_tokens) == len(inside) and int(row.image_tokens) == len(image) == 16


def test_heads_read_are_the_rankings_top_and_random_ones_of_their_layers(saved):
    path, _ = saved
    ds = load_result(path)
    lens = load_result(path.with_name("lens.nc"))
    ranked = anchors.rank_heads(lens).sel(modality="vision")
    top = ds.isel(head_read=(ds.head_selection == "targeted").values)
    assert [(int(l), int(h)) for l, h in zip(top.head_layer.values, top.head_index.values)] == sorted(
        (int(l), int(h)) for l, h in zip(ranked.ranking_layer.values[:3], ranked.ranking_head.values[:3]))
    random = ds.isel(head_read=(ds.head_selection == "random").values)
    assert random.sizes["head_read"] == 3 and not set(random.head_read.values) & set(top.head_read.values)
    drawn = matched_random_heads([0, 9], [2, 3, 4, 8, 10, 11], n_heads=4, per_head=2, rng=np.random.default_rng(1))
    assert set(drawn[:2]) == {2, 3} and set(drawn[2:]) < {8, 10, 11}  # each from its own layer
    drawn = matched_random_heads([0, 1], [2, 3, 4, 5], n_heads=4, per_head=2, rng=np.random.default_rng(1))
    assert set(drawn[:2]) == {2, 3} and set(drawn[2:]) == {4, 5}  # layer 0 used up: from the rest


def test_sinks_are_flagged_by_the_stated_rule_and_aggregates_follow_from_the_samples(saved):
    path, _ = saved
    ds = load_result(path)
    real = np.isfinite(ds.attention.values)
    share = ds.attention.values * real.sum(-1, keepdims=True)
    flagged = np.where(real, share >= config_of(ds)["sink_factor"], np.nan)
    np.testing.assert_array_equal(ds.sink.values, flagged)
    targeted = (ds.head_selection == "targeted") & (ds.head_layer == int(ds.layer[0]))
    if bool(targeted.any()):
        expected = ds.region_mass.isel(head_read=targeted.values).mean(("sample", "head_read"))
        assert float(ds.mass_by_layer.sel(selection="targeted", part="region").isel(layer=0)) == pytest.approx(float(expected))
    np.testing.assert_allclose(ds.region_excess.values, (ds.region_mass - ds.matched_box_mass.mean("box_draw")).values)


def test_a_control_box_covers_as_many_image_tokens_elsewhere(tmp_path):
    view = anchors.view("organism")
    prompt = DataFolder.open(write_data(tmp_path / "d", 2, image_size=112)).traced(view.adapter.tokenizer)[0].prompt
    geometry = view.encode([prompt]).image_geometry(0)
    target = geometry.overlapping(prompt.region)
    boxes = geometry.matched_boxes(prompt.region, 6, np.random.default_rng(3))
    assert len(boxes) == 6
    for box in boxes:
        hits = geometry.overlapping(box)
        assert hits.sum() == target.sum() and (hits != target).any()
        assert box[2] - box[0] == prompt.region[2] - prompt.region[0] and 0 <= box[0] and box[3] <= 112
    assert len(geometry.matched_boxes((0, 0, 112, 112), 6, np.random.default_rng(3))) == 0


def test_an_overlay_of_a_result_kept_in_memory_says_what_it_needs_and_the_other_figure_is_drawn(saved, tmp_path):
    path, _ = saved
    in_memory = load_result(path).copy()
    in_memory.encoding = {}
    logged = []
    drawn = render(in_memory, tmp_path, log=logged.append)
    assert [p.name for p in drawn.written] == ["region_mass_by_layer.png"]
    assert drawn.failed[0][0] == "image_overlays" and "samples group" in drawn.failed[0][1]
    with pytest.raises(InputError, match="samples group"):
        from anchors.report.figures_image import samples_of
        samples_of(in_memory)


def test_matched_region_data_moves_each_box_elsewhere_over_as_many_tokens(tmp_path, capsys):
    """``anchors data matched-regions``: ids ``ID@boxK``, same box size, same token count, other
    tokens; a sample whose box covers every token gets none and is named."""
    big = write_data(tmp_path / "big", 2, image_size=112)
    assert main(["organism", "data", "--out", str(tmp_path / "small"), "--samples", "2"]) == 0
    assert main(["data", "matched-regions", "--data", str(big), "--out", str(tmp_path / "m"), "--draws", "3"]) == 0
    original, control = DataFolder.open(big), DataFolder.open(tmp_path / "m")
    assert len(control.samples) == 3 * len(original.samples)
    view = anchors.view("organism")
    for sample in control.samples:
        source = original.prompt(original_id(sample.sample_id))
        geometry = view.encode([source]).image_geometry(0)
        mine, theirs = geometry.overlapping(sample.region), geometry.overlapping(source.region)
        assert mine.sum() == theirs.sum() and (mine != theirs).any()
        assert sample.region[2] - sample.region[0] == source.region[2] - source.region[0]
    capsys.readouterr()
    assert main(["data", "matched-regions", "--data", str(tmp_path / "small"), "--out", str(tmp_path / "m2")]) == 0
    logged = capsys.readouterr().err
    whole = [s for s in DataFolder.open(tmp_path / "small").samples if s.sample_id not in
             {original_id(c.sample_id) for c in DataFolder.open(tmp_path / "m2").samples}]
    assert whole and all(f"sample {s.sample_id}: no matched boxes" in logged for s in whole)


def test_overlays_draw_the_samples_chosen(saved):
    path, _ = saved
    from anchors.report.figures import image_overlays

    ds = load_result(path)
    chosen = [str(s) for s in ds.sample.values[-2:]]
    figure = image_overlays(ds.sel(sample=chosen))
    titles = [ax.get_title().split(" ")[0] for ax in figure.axes if ax.get_title()]
    assert titles == chosen
