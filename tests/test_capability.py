"""General-capability checks (Table 1): the metrics against known values, the loaders' named
errors, the reference-caption likelihood against a plain forward, and the analysis end to end on
a tiny model through the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from anchors.cli import main
from anchors.datasets.capability import load_capability
from anchors.datasets.records import RecordError
from anchors.readouts.capability import caption_scores, ifeval_follows, normalise_answer, vqa_accuracy
from anchors.results import load
from anchors.tracer import encode_batch

from .helpers import image, prompts

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--model", "tiny:qwen2_5_vl", "--quiet"]


@pytest.mark.parametrize("raw, expected", [
    ("Two", "2"), ("the Dog.", "dog"), ("T-shirt", "t shirt"), ("1,000", "1000"), ("3.5", "3.5"),
    ("dont know", "don't know"), ("(red)", "red"), ("a red car, ", "red car"),
])
def test_vqa_answer_normalisation(raw, expected):
    assert normalise_answer(raw) == expected


def test_vqa_accuracy_on_hand_worked_cases():
    # 3 of 10 annotators said "2": leaving out one of them leaves 2 matches (2/3), leaving out any
    # of the other 7 leaves 3 (capped at 1): (3·2/3 + 7·1) / 10 = 0.9
    assert vqa_accuracy("two", ["2"] * 3 + ["3"] * 7) == pytest.approx(0.9)
    assert vqa_accuracy("2", ["2"] * 2 + ["x"] * 8) == pytest.approx((2 * 1 / 3 + 8 * 2 / 3) / 10)
    assert vqa_accuracy("The dog", ["dog"] * 10) == 1.0
    assert vqa_accuracy("cat", ["dog"] * 10) == 0.0
    assert vqa_accuracy("Dog!", ["dog"]) == 1.0


def test_caption_metrics_from_pycocoevalcap_on_a_fixed_example():
    predictions = {"1": "a red ball on a wooden table", "2": "two dogs play in the snow", "3": "a man riding a horse"}
    references = {"1": ["a red ball lies on a wooden table", "a ball on a table"],
                  "2": ["two dogs playing in snow", "dogs run through the snow"],
                  "3": ["a woman rides a bicycle", "a person on a bike"]}
    swapped = {"1": predictions["3"], "2": predictions["1"], "3": "a ball"}
    scores, second = caption_scores([predictions, swapped], references)
    # the values below were recorded scoring one column alone: two columns in one call change neither
    assert second == caption_scores([swapped], references)[0]
    # BLEU-4 of image 1 by hand: clipped n-gram precisions 7/7, 6/6, 4/5, 1/4; brevity penalty
    # against the closest reference length (8 vs 7 tokens) exp(1 - 8/7)
    by_hand = (1 * 1 * 0.8 * 0.25) ** 0.25 * math.exp(1 - 8 / 7)
    assert scores["bleu_4"][0] == pytest.approx(by_hand, abs=1e-6)
    np.testing.assert_allclose(scores["cider_d"], [4.513068610210932, 2.1267962005206233, 0.41304793576315424], atol=1e-6)
    np.testing.assert_allclose(scores["meteor"], [0.4555364744182031, 0.42191927446219163, 0.18253698514211408], atol=1e-4)
    assert scores["cider_d"][0] > scores["cider_d"][2] and scores["meteor"][0] > scores["meteor"][2]


@pytest.mark.parametrize("instruction, kwargs, response, expected", [
    ("change_case:english_lowercase", {}, "all lower case here", (True, True)),
    ("change_case:english_lowercase", {}, "Has Upper", (False, False)),
    ("change_case:english_lowercase", {}, "Sure:\nhello world", (False, True)),  # loose drops the first line
    ("punctuation:no_comma", {}, "no commas here", (True, True)),
    ("punctuation:no_comma", {}, "a, b", (False, False)),
    ("keywords:existence", {"keywords": ["ball"]}, "the ball is red", (True, True)),
    ("keywords:existence", {"keywords": ["ball"]}, "nothing", (False, False)),
    ("startend:end_checker", {"end_phrase": "Any other questions?"}, "Done. Any other questions?", (True, True)),
    ("detectable_format:json_format", {}, '{"a": 1}', (True, True)),
    ("detectable_format:json_format", {}, "not json", (False, False)),
])
def test_ifeval_through_lm_eval_checkers(instruction, kwargs, response, expected):
    assert ifeval_follows("Write something.", [instruction], [kwargs], response) == expected


def _write(folder: Path, name: str, rows: list[dict]) -> Path:
    path = folder / name
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


BAD = [
    ("vqa", {"id": "q1", "image": "0.png", "question": "What?"}, "record 0 (id q1): field 'answers': missing"),
    ("caption", {"id": "c1", "image": "0.png", "captions": []}, "record 0 (id c1): field 'captions': is empty"),
    ("vqa", {"id": "q2", "image": "gone.png", "question": "What?", "answers": ["a"]}, "field 'image': no file"),
    ("mcq", {"id": "m1", "question": "Q?", "choices": ["x", "y"], "answer": "C"},
     "field 'answer': 'C' is not one of the choice letters A, B"),
    ("ifeval", {"key": 7, "prompt": "Do it.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": []},
     "record 0 (id 7): field 'kwargs': must be a list of 1 objects"),
    ("caption_conflict", {"id": "x1", "image": "0.png", "captions": ["a ball"], "context": "A cat sleeps."},
     "record 0 (id x1): field 'entity': missing"),
]


@pytest.mark.parametrize("task, record, message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_capability_loaders_name_the_bad_record_and_field(tmp_path, task, record, message):
    image(0).save(tmp_path / "0.png")
    path = _write(tmp_path, f"{task}.jsonl", [record])
    with pytest.raises(RecordError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        load_capability(task, path)
    assert str(path) in str(error.value)


def test_reference_caption_likelihood_equals_a_plain_forward():
    """Teacher forcing inside the trace vs the plain module's cross-entropy on the same ids (1e-5)."""
    from anchors.models.tiny import tiny_model
    from anchors.tracer.likelihood import continuation_log_likelihood, with_continuation

    tiny = tiny_model("qwen2_5_vl")
    batch = encode_batch(tiny.adapter, prompts(1, True, seed=3))
    caption = tiny.adapter.tokenizer.encode(" a red ball on a table", add_special_tokens=False)
    got = continuation_log_likelihood(tiny, batch, caption)
    full = with_continuation(batch, caption)
    with torch.no_grad():
        logits = tiny.module(**full.inputs).logits[0, -len(caption) - 1 : -1]
    expected = -torch.nn.functional.cross_entropy(logits, torch.tensor(caption), reduction="none")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert got.shape == (len(caption),) and (got < 0).all()


@pytest.fixture(scope="module")
def capability_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("capability")
    for i in range(3):
        image(i).save(root / f"{i}.png")
    _write(root, "vqa.jsonl", [{"id": f"v{i}", "image": f"{i}.png", "question": "What color is the ball?",
                                "answers": ["red"] * 6 + ["blue"] * 4} for i in range(3)])
    _write(root, "mcq.jsonl", [{"id": f"m{i}", "question": "Which is a colour?", "choices": ["red", "table", "run"],
                                "answer": "A"} for i in range(3)])
    _write(root, "caption.jsonl", [{"id": f"c{i}", "image": f"{i}.png", "captions": ["a red ball on a table"]}
                                   for i in range(2)])
    _write(root, "conflict.jsonl", [{"id": f"x{i}", "image": f"{i}.png", "captions": ["a red ball on a table"],
                                     "context": "The picture shows a cat asleep on a sofa.", "entity": "cat"}
                                    for i in range(2)])
    return root


@pytest.mark.parametrize("task", ["vqa", "mcq", pytest.param("caption", marks=pytest.mark.slow)])  # caption: Java METEOR
def test_capability_runs_end_to_end_and_resumes(capability_data, tmp_path, task):
    out = tmp_path / f"{task}.nc"
    argv = ["capability", *TINY, "--task", task, "--file", str(capability_data / f"{task}.jsonl"),
            "--lens", str(FIXTURES / "lens.nc"), "--ks", "1", "2", "--n-random", "2", "--max-new-tokens", "3",
            "--batch-size", "2", "--out", str(out)]
    assert main(argv) == 0
    ds = load(out)
    assert dict(ds.sizes) == {"sample": ds.sizes["sample"], "condition": 3, "k": 2, "draw": 2}
    score = {"vqa": "vqa_accuracy", "mcq": "correct", "caption": "cider_d"}[task]
    values = ds[score]
    assert values.sel(condition="none").isel(draw=0).notnull().all()  # none: the same at every k
    assert values.sel(condition="targeted").isel(draw=1).isnull().all()  # one targeted set per k
    assert values.sel(condition="random").notnull().all()
    assert json.loads(ds.attrs["config"])["targeted_heads"]["2"][:1] == json.loads(ds.attrs["config"])["targeted_heads"]["1"]
    if task == "caption":
        assert (ds.perplexity.fillna(2.0) > 1).all() and ds.perplexity.notnull().sum() == 2 * (2 + 2 + 2 * 2)  # none at every k
    before = out.stat().st_mtime_ns
    assert main(argv) == 0 and out.stat().st_mtime_ns == before  # complete: not recomputed


def test_capability_refuses_a_lens_result_of_another_model(capability_data, tmp_path, capsys):
    load(FIXTURES / "lens.nc").isel(layer=slice(0, 2)).to_netcdf(tmp_path / "two-layers.nc")
    argv = ["capability", *TINY, "--task", "mcq", "--file", str(capability_data / "mcq.jsonl"),
            "--lens", str(tmp_path / "two-layers.nc"), "--out", str(tmp_path / "x.nc")]
    assert main(argv) == 2
    assert "the lens result comes from another model" in (err := capsys.readouterr().err) and "2 layers × 4 heads" in err
    assert not (tmp_path / "x.nc").exists()


def test_a_caption_mentions_the_entity_as_a_whole_word():
    from anchors.experiments.caption_conflict import mentions

    assert mentions("A Cat on a sofa", "cat") and mentions("two hot dogs", "hot dog") is False
    assert not mentions("a catalogue", "cat") and mentions("a hot dog.", "hot dog")


@pytest.mark.slow
def test_caption_conflict_runs_every_setting_end_to_end(capability_data, tmp_path):
    """Table 2's knockouts and Table 3's amplification on a tiny model: every setting labelled,
    scored with the caption metrics and the misleading-entity rate."""
    out = tmp_path / "conflict.nc"
    assert main(["caption-conflict", *TINY, "--file", str(capability_data / "conflict.jsonl"), "--lens",
                 str(FIXTURES / "lens.nc"), "--pathways", "context->instruction", "visual->generated", "--layers", "1",
                 "--window", "1", "--ks", "2", "--n-random", "1", "--max-new-tokens", "4", "--out", str(out)]) == 0
    ds = load(out)
    assert ds.kind.values.tolist() == ["none", "knockout", "knockout", "targeted", "random"]
    assert ds.pathway.values.tolist()[1:3] == ["context->instruction", "visual->generated"]
    assert ds.cider_d.notnull().all() and ds.meteor.notnull().all()
    assert ((ds.entity_rate >= 0) & (ds.entity_rate <= 1)).all()
    assert ds.caption.sel(setting=0).values.tolist() != ["", ""]
