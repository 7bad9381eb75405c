"""The authors' released data format (EchoDreamer/Modality-Following), written by the tests: COCO
2017 names, an empty candidate list, Chinese forms, a repeated image id and a record whose question
does not split into instruction, question and format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anchors.datasets import DataFolder, RecordError, STYLES
from anchors.datasets.build import first_token_ids
from anchors.datasets.folder import build_folder
from anchors.datasets.modality_following import load_modality_following
from anchors.models.tiny import tiny_model

from .mc2_fixture import write_image

FORMAT3 = "Answer the question using a single word or phrase."


def _record(image_id: int, question: str, modality: str, img: str, text: str, img_forms: list[str],
            text_forms: list[str], task: str = "color") -> dict:
    sentence = STYLES["authors"][modality]
    return {"image_id": f"{image_id:012d}", "task": task, "context": f"The picture shows something {text}.",
            "question1": f"{sentence}\n{question}\nThe answer is ",
            "question2": f"{sentence}\n{question}\n{FORMAT3} The answer is ",
            "question3": f"{sentence}\n{question}\n{FORMAT3}",
            "answer_img": img, "answer_text": text,
            "answer_img_candidate_list": img_forms, "answer_text_candidate_list": text_forms}


@pytest.fixture
def authors(tmp_path) -> tuple[list[Path], Path]:
    images = tmp_path / "coco2017"
    for n, image_id in enumerate((384338, 397133, 37777)):
        write_image(images / ("train2017" if n % 2 == 0 else "val2017") / f"{image_id:012d}.jpg", n)
    text = [
        _record(384338, "What color is the bus?", "text", "red", "blue", ["crimson", "红色"], ["azure", "蓝色"]),
        _record(384338, "What color is the car?", "text", "green", "yellow", [], ["gold"]),  # same image, 2nd question
        _record(397133, "How many dogs are there?", "text", "two", "three", ["2"], ["3"], task="counting"),
    ]
    broken = _record(37777, "What color is the sky?", "text", "grey", "pink", [], [])
    broken["question3"] = broken["question3"].replace("\n", " ", 1)  # instruction and question on one line
    text.append(broken)
    vision = [_record(397133, "How many dogs are there?", "vision", "two", "three", [], [], task="counting")]
    files = [tmp_path / "v3_following_text_open_ended_qwen_vl_2_5_7b_remaining.json",
             tmp_path / "v3_following_vision_open_ended_qwen_vl_2_5_7b_remaining.json"]
    for path, records in zip(files, (text, vision)):
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return files, images


def test_the_broken_record_is_named_and_the_rest_load(authors):
    files, images = authors
    with pytest.raises(RecordError, match=r"text_open_ended.*record 3 \(id 000000037777\): field 'question3': is not"):
        load_modality_following(files, images)
    data = load_modality_following(files, images, strict=False)
    assert [(p.index, p.field) for p in data.problems] == [(3, "question3")]
    assert [s.instructed for s in data.samples] == ["text", "text", "text", "vision"]
    first = data.samples[0]
    assert dict(first.segments) == {"context": "The picture shows something blue.",
                                    "instruction_semantic": STYLES["authors"]["text"],
                                    "question": "What color is the bus?", "instruction_format": FORMAT3}
    assert [role for role, _ in first.segments] == ["context", "instruction_semantic", "question", "instruction_format"]
    assert first.separator == "\n" and first.image.endswith("train2017/000000384338.jpg")
    assert (first.compliant_answer, first.competing_answer) == ("blue", "red")
    vision = data.samples[-1]
    assert (vision.compliant_answer, vision.competing_answer) == ("two", "three")
    assert len({s.record_id for s in data.samples}) == 4  # one image with two questions: two records
    assert data.dictionaries["blue", "color"].forms == ("blue", "azure", "蓝色")
    assert data.dictionaries["green", "color"].forms == ("green",)  # empty list: the canonical answer alone
    assert data.dictionaries["three", "counting"].forms == ("three", "3")  # merged over both files


def test_question1_keeps_its_open_format_and_the_folder_feeds_traced_samples(authors, tmp_path):
    files, images = authors
    build_folder(tmp_path / "data", modality_following=[str(f) for f in files], images=str(images), strict=False,
                 question="question1")
    tokenizer = tiny_model("qwen2_5_vl", "sdpa").adapter.tokenizer
    traced = DataFolder.open(tmp_path / "data").traced(tokenizer)
    assert dict(traced[0].prompt.segments)["instruction_format"] == "The answer is "
    assert traced[0].prompt.user_text.count("\n") == 3
    by_id = {t.sample_id: t for t in traced}
    bus = by_id[next(i for i in by_id if i.startswith("v3_following_text") and i.split("#")[1].startswith("0:"))]
    assert bus.compliant_ids == first_token_ids(tokenizer, ["blue", "azure", "蓝色"])
    assert bus.competing_ids == first_token_ids(tokenizer, ["red", "crimson", "红色"])


def test_data_build_reads_the_authors_files_from_the_command_line(authors, tmp_path):
    from .test_cli import run

    files, images = authors
    done = run("data", "build", "--modality-following", *map(str, files), "--images", str(images), "--lenient",
               "--question", "question2", "--out", str(tmp_path / "data"), "--quiet")
    samples = [json.loads(line) for line in (tmp_path / "data" / "samples.jsonl").read_text().splitlines()]
    assert done.stdout.strip() == str(tmp_path / "data") and len(samples) == 5  # question2 of record 3 splits
    assert all(s["style"] == "authors" and s["separator"] == "\n" for s in samples)
    assert dict(map(tuple, samples[0]["segments"]))["instruction_format"] == f"{FORMAT3} The answer is "
    refused = run("data", "build", "--modality-following", str(files[0]), "--out", str(tmp_path / "x"), check=False)
    assert refused.returncode == 2 and "need --images" in refused.stderr
