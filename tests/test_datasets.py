"""MC2 and JSONL loading, validation errors, instruction building and persistence."""

from __future__ import annotations

import json
import re

import pytest

from anchors.datasets import (
    MC2_TASKS, DatasetError, RecordError, build_sample, build_samples, load_jsonl, load_mc2, load_samples, save_samples,
)
from anchors.datasets.instructions import STYLES, VARIANTS
from anchors.prompts import Prompt
from anchors.tracer import encode_batch
from anchors.models.tiny import tiny_model

from .mc2_fixture import make_mc2, write_image


@pytest.fixture
def mc2(tmp_path):
    return make_mc2(tmp_path)


def test_mc2_fixture_loads_every_task(mc2):
    path, images, _ = mc2
    report = load_mc2(path, images)
    assert not report.problems
    assert sorted(r.task for r in report.records) == sorted(MC2_TASKS)
    colour = next(r for r in report.records if r.task == "color")
    assert colour.answer_vision == "red"  # stray whitespace normalised
    assert colour.image.endswith("train2014/COCO_train2014_000000000102.jpg")
    counting = next(r for r in report.records if r.task == "counting")
    assert counting.image.endswith("val2014/COCO_val2014_000000000103.jpg")


def _broken(records, index, change):
    records = [dict(r) for r in records]
    change(records[index])
    return records


BAD_MC2 = [
    ("missing field", lambda r: r.pop("question"), "record 0 (id 000000000100-0): field 'question': missing"),
    ("empty answer", lambda r: r.update(answer_vision="   "), "field 'answer_vision': is empty"),
    ("identical answers", lambda r: r.update(answer_text="Running"),
     "field 'answer_text': identical to answer_vision ('Running'): no modality conflict"),
    ("unknown task", lambda r: r.update(task="weather"), "field 'task': unknown task 'weather'"),
    ("wrong type", lambda r: r.update(answer_text=3), "field 'answer_text': must be a string, got int"),
    ("image id not numeric", lambda r: r.update(image_id="abc"), "record 0 (id abc): field 'image_id': must be a COCO id"),
    ("image id missing", lambda r: r.pop("image_id"), "record 0: field 'image_id': missing"),
    ("image missing", lambda r: r.update(image_id="999"),
     "field 'image_id': no image 000000000999: looked for"),
    ("empty context", lambda r: r.update(context=""), "field 'context': is empty"),
]


@pytest.mark.parametrize("kind,change,message", BAD_MC2, ids=[b[0] for b in BAD_MC2])
def test_bad_mc2_records_name_file_record_and_field(tmp_path, mc2, kind, change, message):
    path, images, records = mc2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_broken(records, 0, change)))
    with pytest.raises(RecordError) as caught:
        load_mc2(bad, images)
    assert str(bad) in str(caught.value) and message in str(caught.value)
    report = load_mc2(bad, images, strict=False)
    assert len(report.records) == len(records) - 1 and len(report.problems) == 1


def test_unreadable_image_is_named(mc2):
    path, images, _ = mc2
    (images / "train2014" / "COCO_train2014_000000000100.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(RecordError, match=r"field 'image': image .*COCO_train2014_000000000100.jpg is unreadable"):
        load_mc2(path, images)


def test_record_that_is_not_an_object(tmp_path, mc2):
    _, images, records = mc2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(records + ["oops"]))
    with pytest.raises(RecordError, match="record 8: field 'record': must be an object, got str"):
        load_mc2(bad, images)


def test_whole_file_errors(tmp_path, mc2):
    _, images, _ = mc2
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(DatasetError, match="a.json: not valid JSON"):
        load_mc2(tmp_path / "a.json", images)
    (tmp_path / "b.json").write_text('{"image_id": 1}')
    with pytest.raises(DatasetError, match="b.json: expected a JSON list of records, got dict"):
        load_mc2(tmp_path / "b.json", images)


def test_non_strict_reports_every_bad_record(tmp_path, mc2):
    _, images, records = mc2
    broken = [dict(r) for r in records]
    broken[1]["task"] = "??"
    broken[3]["answer_text"] = broken[3]["answer_vision"]
    broken[5].pop("context")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    report = load_mc2(bad, images, strict=False)
    assert [(p.index, p.field) for p in report.problems] == [(1, "task"), (3, "answer_text"), (5, "context")]
    assert report.summary() == "5 records loaded, 3 skipped"


def _jsonl_row(image="img/a.jpg", **overrides):
    row = {"id": "u1", "image": image, "context": "The car is green.", "question": "What colour is the car?",
           "answer_vision": "red", "answer_text": "green", "task": "color"}
    row.update(overrides)
    return row


def test_jsonl_own_data(tmp_path):
    write_image(tmp_path / "img" / "a.jpg", 0)
    rows = [_jsonl_row(), _jsonl_row(id="u2", task="mood")]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = load_jsonl(tmp_path / "data.jsonl", tasks=["color", "mood"])
    assert [r.record_id for r in report.records] == ["u1", "u2"]


BAD_JSONL = [
    ("bad json line", "{oops", "record 0: field 'line': not valid JSON"),
    ("duplicate id", None, "record 1 (id u1): field 'id': duplicate record id"),
    ("image does not exist", json.dumps(_jsonl_row(image="img/none.jpg")), "field 'image': image"),
    ("image field missing", json.dumps({k: v for k, v in _jsonl_row().items() if k != "image"}), "field 'image': missing"),
]


@pytest.mark.parametrize("kind,line,message", BAD_JSONL, ids=[b[0] for b in BAD_JSONL])
def test_bad_jsonl_records(tmp_path, kind, line, message):
    write_image(tmp_path / "img" / "a.jpg", 0)
    lines = [json.dumps(_jsonl_row()), json.dumps(_jsonl_row())] if line is None else [line]
    (tmp_path / "data.jsonl").write_text("\n".join(lines))
    with pytest.raises(RecordError, match=re.escape(message)):
        load_jsonl(tmp_path / "data.jsonl")


def test_instruction_builder_pairs_and_answers(mc2):
    path, images, _ = mc2
    records = load_mc2(path, images).records
    samples = build_samples(records, styles=tuple(STYLES), variants=VARIANTS)
    assert len(samples) == len(records) * 2 * len(STYLES) * len(VARIANTS)
    colour = next(r for r in records if r.task == "color")
    text = build_sample(colour, "text")
    vision = build_sample(colour, "vision", style="focus")
    assert (text.compliant_answer, text.competing_answer) == ("blue", "red")
    assert (vision.compliant_answer, vision.competing_answer) == ("red", "blue")
    assert dict(vision.segments)["instruction_semantic"] == "Focus on the visual content; ignore textual context."
    assert [r for r, _ in build_sample(colour, "text", variant="swapped").segments][-2:] == ["instruction_format", "instruction_semantic"]
    assert [r for r, _ in build_sample(colour, "text", variant="system_between").segments][-3:] == [
        "instruction_semantic", "system", "instruction_format"]
    with pytest.raises(ValueError, match="unknown variant 'sideways'"):
        build_sample(colour, "text", variant="sideways")


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "internvl"])
def test_instruction_variants_are_located_by_the_token_roles(mc2, model_type):
    path, images, _ = mc2
    record = load_mc2(path, images).records[0]
    tiny = tiny_model(model_type)
    from PIL import Image

    samples = [build_sample(record, m, style=s, variant=v) for m in ("text", "vision") for s in STYLES for v in VARIANTS]
    prompts = [Prompt(s.sample_id, s.segments, image=Image.open(s.image).convert("RGB")) for s in samples]
    batch = encode_batch(tiny.adapter, prompts)
    for row, sample in enumerate(samples):
        for role, text in sample.segments:
            ids = batch.inputs["input_ids"][row, batch.positions(row, role)]
            assert tiny.adapter.tokenizer.decode(ids, clean_up_tokenization_spaces=False).strip() == text, (sample.sample_id, role)


def test_samples_round_trip_through_jsonl(tmp_path, mc2):
    path, images, _ = mc2
    samples = build_samples(load_mc2(path, images).records, variants=("default", "system_before"))
    assert load_samples(save_samples(tmp_path / "samples.jsonl", samples)) == samples


@pytest.mark.parametrize("strict", [True, False])
def test_exact_duplicate_records_are_dropped_and_reported(tmp_path, mc2, strict):
    _, images, records = mc2
    doubled = tmp_path / "doubled.json"
    doubled.write_text(json.dumps(records + [dict(records[2])]))
    report = load_mc2(doubled, images, strict=strict)
    assert len(report.records) == len(records) and not report.problems
    assert [(d.index, d.reason) for d in report.duplicates] == [(len(records), "exact duplicate of record 2")]
    assert report.summary() == f"{len(records)} records loaded, 0 skipped, 1 exact duplicates dropped"
