"""Regions as token roles: a sample's box splits its image tokens into ``region`` (rectangle overlaps
the box) and ``off_region``, usable wherever a role is; knockouts with them equal plain-hook
references on every verified family (eager and sdpa, 1e-5); samples whose box splits nothing are
left out of region analyses and listed; boxes come from records, with errors naming the field."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import anchors
from anchors.datasets.records import RecordError, load_jsonl
from anchors.errors import InputError
from anchors.interventions import Knockout
from anchors.models.adapters.registry import VERIFIED
from anchors.models.tiny import tiny_model
from anchors.prompts import ROLES, Prompt, PromptError
from anchors.prompts.roles import expand_role
from anchors.readouts import Subspaces
from anchors.runner.resumable import ResumeConflict
from anchors.tracer import encode_batch, trace_batch

from .helpers import image, prompts
from .reference import knockout_hooks, run_hooked

TOL = 1e-5
TOP_LEFT = (0, 0, 18, 18)  # on the 56×56 test images: the first tokens' rectangles, never the last ones'


@pytest.fixture(params=[t for t in VERIFIED if t not in ("llama", "qwen2")])
def vlm(request, attn):
    """A tiny instance of every verified multimodal family, eager and sdpa."""
    return tiny_model(request.param, attn)


def _with_region(items: list[Prompt], box=TOP_LEFT) -> list[Prompt]:
    return [dataclasses.replace(p, region=box) for p in items]


def test_a_region_labels_exactly_the_visual_tokens_whose_rectangles_overlap_it(vlm):
    tiny = vlm
    plain = encode_batch(tiny.adapter, prompts(2, True, seed=3))
    batch = encode_batch(tiny.adapter, _with_region(prompts(2, True, seed=3)))
    for row in range(2):
        visual = plain.positions(row, "visual")
        overlapping = batch.image_geometry(row).overlapping(TOP_LEFT)
        assert batch.positions(row, "region") == [p for p, inside in zip(visual, overlapping) if inside]
        assert batch.positions(row, "off_region") == [p for p, inside in zip(visual, overlapping) if not inside]
        assert batch.positions(row, "visual") == visual  # both parts stay visual
        assert 0 < len(batch.positions(row, "region")) < len(visual)
    assert torch.equal(batch.mask("cues"), plain.mask("cues"))


@pytest.mark.parametrize("source,target", [("region", "instruction"), ("off_region", "instruction"),
                                           ("region", "off_region")])
def test_region_knockouts_match_the_hook_reference(vlm, source, target):
    tiny = vlm
    batch = encode_batch(tiny.adapter, _with_region(prompts(3, True, seed=7)))
    space = Subspaces.from_ids(batch.sample_ids, [list(range(10, 60))] * 3, [list(range(60, 110))] * 3)
    roles = [[ROLES[c] for c in row] for row in batch.roles.tolist()]
    spec = Knockout(source, target, layer=1, window=3)
    layers = spec.layers(tiny.adapter.shape.n_layers)
    with knockout_hooks(tiny.module, tiny.adapter, layers, roles, set(expand_role(source)), set(expand_role(target))):
        _, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, [spec])
    torch.testing.assert_close(got.answer_logits, logits[:, -1, space.union], atol=TOL, rtol=0)


def test_a_region_box_is_checked_when_the_prompt_is_made():
    with pytest.raises(PromptError, match="sample p: field 'region': x1 \\(4\\) must be greater than x0 \\(10\\)"):
        Prompt("p", (("context", "a"),), image=image(0), region=(10, 0, 4, 5))
    with pytest.raises(PromptError, match="field 'region': needs an image"):
        Prompt("p", (("context", "a"),), region=(0, 0, 4, 5))


def test_jsonl_regions_are_read_and_a_bad_one_names_file_record_and_field(tmp_path):
    image(1, size=40).save(tmp_path / "a.png")
    record = {"image": "a.png", "context": "The ball is red.", "question": "What color is the ball?",
              "answer_vision": "blue", "answer_text": "red", "task": "color"}
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps({**record, "id": i, "region": box}) for i, box in
                              enumerate([[2, 3, 20, 30], [0, 0, 50, 10]])) + "\n")
    report = load_jsonl(path, strict=False)
    assert [r.region for r in report.records] == [(2.0, 3.0, 20.0, 30.0)]
    assert str(report.problems[0]) == (f"{path}: record 1 (id 1): field 'region': [0, 0, 50, 10] reaches outside the "
                                       "pixels of the 40×40 image")
    with pytest.raises(RecordError, match="field 'region'"):
        load_jsonl(path)


def test_the_organisms_data_carry_the_shape_they_drew(tmp_path):
    from anchors.organism.task import write_data

    folder = anchors.datasets.DataFolder.open(write_data(tmp_path / "data", 2))
    from PIL import Image

    for sample in folder.samples:
        x0, y0, x1, y1 = (int(v) for v in sample.region)
        pixels = np.asarray(Image.open(sample.image).convert("RGB")).astype(int)
        inside, ring = pixels[y0:y1, x0:x1], np.concatenate([pixels[max(y0 - 2, 0):y0, x0:x1].reshape(-1, 3),
                                                              pixels[y1:y1 + 2, x0:x1].reshape(-1, 3)])
        assert inside.shape[:2] == (y1 - y0, x1 - x0) and len(ring)
        # the shape's colour differs from the background just outside its box
        assert np.abs(np.median(inside.reshape(-1, 3), axis=0) - np.median(ring, axis=0)).max() > 20


def test_samples_whose_region_splits_nothing_are_left_out_and_listed(tmp_path):
    """Of four organism samples (56×56 images, 4 image tokens of 28×28), one box splits the tokens,
    one covers all of them, one covers a corner no token's rectangle reaches past, one has none:
    a region knockout runs on the first and lists the others with why."""
    from anchors.models import ModelSpec
    from anchors.organism.task import write_data

    folder = anchors.datasets.DataFolder.open(write_data(tmp_path / "data", 2))
    samples = folder.traced(ModelSpec("organism").adapter().tokenizer)
    boxes = [(0, 0, 10, 10), (0, 0, 56, 56), (0, 0, 56, 56), None]
    samples = [dataclasses.replace(s, prompt=dataclasses.replace(s.prompt, region=box)) for s, box in zip(samples, boxes)]
    logged: list[str] = []
    profile = anchors.KnockoutProfile(windows=(1,), layers=(0,), pathways=("region->instruction",))
    result = anchors.run(profile, "organism", samples, log=logged.append, out=tmp_path / "ko.nc")
    assert result["sample"].values.tolist() == [samples[0].sample_id]
    excluded = json.loads(result.attrs["excluded_samples"])
    assert excluded == {samples[1].sample_id: "its region [0, 0, 56, 56] overlaps all 4 of its image tokens",
                        samples[2].sample_id: "its region [0, 0, 56, 56] overlaps all 4 of its image tokens",
                        samples[3].sample_id: "it has no region box"}
    assert sum(m.startswith("left out of the region analysis") for m in logged) == 3
    with pytest.raises(InputError, match="all 3 left out of the region analysis"):
        anchors.run(profile, "organism", samples[1:])
    moved = [dataclasses.replace(samples[0], prompt=dataclasses.replace(samples[0].prompt, region=(0, 0, 12, 12)))]
    with pytest.raises(ResumeConflict):  # the same samples with another box: another computation
        anchors.run(profile, "organism", moved, out=tmp_path / "ko.nc")


def _coco_fixture(root):
    """MC2 records on COCO-named images, and an instances file annotating some of them."""
    from .mc2_fixture import write_image

    questions = ["What color is the dog?", "How many people are there?", "What is the cat sitting on?",
                 "Is the dog next to the cat?", "What color is the dog?"]
    records = []
    for i, question in enumerate(questions):
        write_image(root / "coco" / "val2014" / f"COCO_val2014_{100 + i:012d}.jpg", i)
        records.append({"image_id": f"{100 + i:012d}", "task": "color", "question": question,
                        "answer_vision": "brown", "answer_text": "white", "context": f"The passage says white ({i})."})
    (root / "evaluate_final.json").write_text(json.dumps(records))
    instances = {
        "images": [{"id": 100 + i, "file_name": f"COCO_val2014_{100 + i:012d}.jpg", "width": 56, "height": 56}
                   for i in range(4)],  # the fifth image is not annotated at all
        "categories": [{"id": 1, "name": "person"}, {"id": 17, "name": "cat"}, {"id": 18, "name": "dog"}],
        "annotations": [
            {"image_id": 100, "category_id": 18, "bbox": [5, 6, 10, 12], "iscrowd": 0},
            {"image_id": 100, "category_id": 18, "bbox": [30, 2, 8, 8], "iscrowd": 0},
            {"image_id": 100, "category_id": 18, "bbox": [0, 0, 56, 56], "iscrowd": 1},  # a crowd box is not an instance
            {"image_id": 101, "category_id": 1, "bbox": [1, 1, 5, 5], "iscrowd": 0},
            {"image_id": 102, "category_id": 18, "bbox": [1, 1, 5, 5], "iscrowd": 0},
        ],
    }
    (root / "instances_val2014.json").write_text(json.dumps(instances))
    return root / "evaluate_final.json", root / "coco", root / "instances_val2014.json"


def test_coco_boxes_come_from_the_annotations_and_records_without_one_are_listed(tmp_path):
    from anchors.datasets.folder import build_folder

    mc2, images, instances = _coco_fixture(tmp_path)
    logged: list[str] = []
    summary = dict(build_folder(tmp_path / "data", mc2=str(mc2), images=str(images), coco_instances=str(instances),
                                dictionaries="answers-only", log=logged.append))
    folder = anchors.datasets.DataFolder.open(tmp_path / "data")
    regions = {s.record_id: s.region for s in folder.samples}
    # the union of both dogs' boxes ([x, y, w, h] -> [x0, y0, x1, y1]); the crowd annotation is left out
    assert regions == {"000000000100-0": (5.0, 2.0, 38.0, 18.0), "000000000101-1": None, "000000000102-2": None,
                       "000000000103-3": None, "000000000104-4": None}
    assert summary["regions"] == "1 of 5 records (4 without one, listed in the log)"
    assert sorted(m for m in logged if m.startswith("no region")) == [
        "no region for record 000000000101-1: the question names no COCO category",
        "no region for record 000000000102-2: no 'cat' is annotated in image COCO_val2014_000000000102.jpg",
        "no region for record 000000000103-3: the question names several COCO categories (cat, dog)",
        "no region for record 000000000104-4: image COCO_val2014_000000000104.jpg is not in instances_val2014.json",
    ]
    traced = folder.traced(anchors.ModelSpec("organism").adapter().tokenizer)
    assert [s.prompt.region for s in traced if s.prompt.region] == [(5.0, 2.0, 38.0, 18.0)] * 2  # both instructions


def test_a_regions_side_file_is_checked_against_each_image(tmp_path):
    from anchors.datasets.folder import build_folder
    from anchors.datasets.records import DatasetError

    mc2, images, _ = _coco_fixture(tmp_path)
    side = tmp_path / "regions.json"
    side.write_text(json.dumps({"000000000100-0": [1, 2, 30, 40], "000000000101-1": [0, 0, 80, 10]}))
    with pytest.raises(DatasetError, match="regions.json: record '000000000101-1': field 'region': .* outside the pixels "
                                           "of the 56×56 image"):
        build_folder(tmp_path / "data", mc2=str(mc2), images=str(images), regions=str(side), dictionaries="answers-only")
    side.write_text(json.dumps({"000000000100-0": [1, 2, 30, 40]}))
    summary = dict(build_folder(tmp_path / "data", mc2=str(mc2), images=str(images), regions=str(side),
                                dictionaries="answers-only"))
    assert summary["regions"] == "1 of 5 records (4 without one, listed in the log)"


def test_results_carry_each_image_tokens_rectangle_view_and_the_region(tmp_path):
    """The ``samples`` group holds what an overlay needs without torch: each image token's rectangle
    and view, the image's size and the region box, equal to the encoded batch's geometry."""
    from anchors.models import ModelSpec
    from anchors.organism.task import write_data

    folder = anchors.datasets.DataFolder.open(write_data(tmp_path / "data", 2))
    adapter = ModelSpec("organism").adapter()
    samples = folder.traced(adapter.tokenizer)
    result_path = tmp_path / "runs" / "lens.nc"
    anchors.run(anchors.LensProfile(heads=False), "organism", samples, out=result_path)
    group = anchors.load_group(result_path, "samples")
    batch = encode_batch(adapter, [s.prompt for s in samples])
    for row, sample in enumerate(samples):
        table = group.sel(sample=sample.sample_id)
        visual = (table.token_role.values == "region") | (table.token_role.values == "off_region")
        geometry = batch.image_geometry(row)
        np.testing.assert_array_equal(table.token_box.values[visual], geometry.rects)
        assert np.isnan(table.token_box.values[~visual]).all()
        assert set(table.token_view.values[visual]) == {"image"} and (table.image_height.item(), table.image_width.item()) == (56, 56)
        assert tuple(table.region.values) == sample.prompt.region
    assert group.token_box.attrs["units"] == "pixels" and list(group.corner.values) == ["x0", "y0", "x1", "y1"]


def test_attention_to_the_image_equals_eager_output_attentions(vlm):
    """``view.image_attention``: the instruction tokens' mean attention to each image token, under
    eager and sdpa alike, against the eager model's own ``output_attentions`` (1e-5); per region."""
    view = anchors.view(vlm)
    batch = view.encode(_with_region(prompts(2, True, seed=21)))
    layer = view.attention_layers[-1]
    with torch.no_grad(), view.trace(batch):
        to_image = view.image_attention(batch, layer).save()
        to_region = view.image_attention(batch, layer, query_role="generated", key_role="region").save()
    eager = tiny_model(vlm.adapter.model_type, "eager")
    every = eager.module(**batch.inputs, output_attentions=True).attentions
    probs = every[layer] if len(every) == view.n_layers else every[view.attention_layers.index(layer)]
    for row in range(2):
        queries = batch.positions(row, "instruction")
        expected = probs[row][:, queries].mean(1)[:, batch.positions(row, "visual")]
        n = len(batch.positions(row, "visual"))
        torch.testing.assert_close(to_image[row, :, :n], expected, atol=TOL, rtol=0)
        inside = batch.positions(row, "region")
        torch.testing.assert_close(to_region[row, :, :len(inside)], probs[row][:, -1, inside], atol=TOL, rtol=0)
