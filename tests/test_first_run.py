"""A first run never stops for a cheap reason (issue 22): cheap refusals come before any model and
leave nothing behind, an empty or failing figure never loses the report, data builds without
WordNet, and random heads never land on a linear-attention layer."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from anchors.cli import main
from anchors.datasets import WordNetUnavailable
from anchors.datasets.folder import build_folder
from anchors.experiments import HeadIntervention, LensProfile
from anchors.models.tiny import tiny_model
from anchors.organism.task import write_data
from anchors.prompts import TracedSample
from anchors.report import FIGURES, write_report
from anchors.runner import run

from .fixtures.make_fixtures import samples as fixture_samples
from .helpers import prompts
from .mc2_fixture import write_image

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def organism_data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("first-run") / "data", 4)


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("anchors: error: "), err
    return err[0]


def test_cheap_refusals_exit_2_before_any_heavy_import_and_leave_nothing(capsys, tmp_path, organism_data):
    out = tmp_path / "out" / "x.nc"
    before = set(sys.modules)
    assert "no such folder" in _refused(capsys, ["lens", "--data", str(tmp_path / "nowhere"), "--out", str(out)])
    assert "'foo' is neither one of visual->instruction" in _refused(
        capsys, ["knockout", "--data", str(organism_data), "--pathways", "foo", "--out", str(out)])
    assert "is a knockout_profile result; expected lens_profile" in _refused(
        capsys, ["intervene", "--data", str(organism_data), "--lens", str(FIXTURES / "knockout.nc"), "--out", str(out)])
    assert "windows must be a positive integer" in _refused(
        capsys, ["knockout", "--data", str(organism_data), "--windows", "0", "--out", str(out)])
    loaded = {m for m in set(sys.modules) - before if m.split(".")[0] in ("torch", "transformers", "nnsight")}
    assert not loaded or "torch" in before, sorted(loaded)[:5]
    assert not (tmp_path / "out").exists() and not list(tmp_path.rglob("*.parts"))


def test_a_complete_output_is_recognised_from_its_recorded_inputs(capsys, tmp_path, organism_data, monkeypatch):
    out = tmp_path / "lens.nc"
    argv = ["lens", "--data", str(organism_data), "--no-heads", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    stamp = out.stat().st_mtime_ns
    import anchors.runner

    def no_run(*args, **kwargs):
        raise AssertionError("the runner was called for a complete output")

    monkeypatch.setattr(anchors.runner, "run_folder", no_run)
    assert main(argv) == 0 and out.stat().st_mtime_ns == stamp
    assert capsys.readouterr().out.strip().endswith(str(out))
    # another option: the recorded inputs differ, so the runner's full fingerprint decides (and refuses)
    monkeypatch.undo()
    assert "made with another configuration" in _refused(capsys, [*argv, "--top-k", "2"])
    assert out.stat().st_mtime_ns == stamp and not out.with_name("lens.nc.parts").exists()


def test_an_all_followed_intervention_plots_and_reports_with_a_noted_empty_panel(tmp_path, capsys):
    loaded = tiny_model("qwen2_5_vl", "sdpa")
    samples = fixture_samples(loaded, 4, all_followed=True, seed=5)
    lens = run(LensProfile(top_k=2), loaded, samples, batch_size=4, out=tmp_path / "lens.nc")
    heads = run(HeadIntervention(lens, ks=(1, 2), n_random=1, alphas=(1.0, 2.0)), loaded, samples, batch_size=4,
                out=tmp_path / "heads.nc")
    assert heads.followed.all() and np.isnan(heads.mfr_alpha).all()
    assert main(["plot", str(tmp_path / "heads.nc"), "--out", str(tmp_path / "figures"), "--quiet"]) == 0
    assert {p.name for p in (tmp_path / "figures").glob("*.png")} == {
        "heads-fig5c_mfr_curves.png", "heads-table4_alpha_sweep.png", "heads-fig5b_head_heatmap.png"}
    svg = (tmp_path / "figures" / "heads-table4_alpha_sweep.svg").read_text()
    assert "no failed samples to amplify" in svg
    assert main(["report", str(tmp_path), "--quiet"]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "could not be drawn" not in page and "no failed samples to amplify" in page


def test_a_failing_figure_does_not_lose_the_others_or_the_report(tmp_path, monkeypatch):
    shutil.copy(FIXTURES / "knockout.nc", tmp_path / "knockout.nc")
    shutil.copy(FIXTURES / "lens.nc", tmp_path / "lens.nc")

    def broken(ds):
        raise ValueError("a deliberately broken figure")

    monkeypatch.setitem(FIGURES["knockout_profile"], "fig2_knockout_nssd", broken)
    messages: list[str] = []
    page = write_report(tmp_path, log=messages.append).read_text()
    assert "figure <code>fig2_knockout_nssd</code> could not be drawn: ValueError: a deliberately broken figure" in page
    assert any("knockout-fig2_knockout_nssd failed" in m for m in messages)
    written = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert "knockout-fig6_window_sensitivity.png" in written and "lens-fig3b_ldar.png" in written
    assert "knockout-fig2_knockout_nssd.png" not in written
    assert main(["plot", str(tmp_path / "knockout.nc"), "--quiet"]) == 1  # the plot command says one failed


def test_data_builds_without_wordnet_with_answers_only(tmp_path, monkeypatch):
    import anchors.datasets.dictionaries as dictionaries

    def hidden(*args, **kwargs):
        raise WordNetUnavailable("WordNet hidden by the test")

    monkeypatch.setattr(dictionaries, "wordnet", hidden)
    write_image(tmp_path / "images" / "0.jpg", 0)
    record = {"id": "r0", "image": "images/0.jpg", "context": "The passage says green.", "question": "What colour?",
              "answer_vision": "red", "answer_text": "green", "task": "color"}
    (tmp_path / "records.jsonl").write_text(json.dumps(record))
    (tmp_path / "extra.json").write_text(json.dumps({"red": ["rouge"]}))
    with pytest.raises(WordNetUnavailable):
        build_folder(tmp_path / "data", jsonl=str(tmp_path / "records.jsonl"))
    assert not (tmp_path / "data" / "samples.jsonl").exists()
    assert main(["data", "build", "--jsonl", str(tmp_path / "records.jsonl"), "--dictionaries", "answers-only",
                 "--extra-forms", str(tmp_path / "extra.json"), "--out", str(tmp_path / "data"), "--quiet"]) == 0
    built = [json.loads(line) for line in (tmp_path / "data" / "dictionaries.jsonl").read_text().splitlines()]
    assert {d["canonical"]: d["forms"] for d in built} == {"red": ["red", "rouge"], "green": ["green"]}


def test_the_missing_wordnet_message_names_the_answers_only_option(tmp_path):
    from anchors.datasets.wordnet import install_from_debian

    with pytest.raises(WordNetUnavailable, match="--dictionaries answers-only"):
        install_from_debian(tmp_path / "cache", source=tmp_path / "no-wordnet")


def test_random_heads_of_a_hybrid_decoder_come_from_softmax_attention_layers():
    loaded = tiny_model("qwen3_5", "sdpa")
    adapter = loaded.adapter
    softmax = set(adapter.attention_layers(None))
    assert softmax and len(softmax) < adapter.shape.n_layers  # a hybrid: some layers are linear attention
    samples = [TracedSample(p, (11,), (12,), task="color", instructed=("text", "vision")[i % 2])
               for i, p in enumerate(prompts(2, True, seed=3))]
    lens = run(LensProfile(top_k=2), loaded, samples, batch_size=2)
    analysis = HeadIntervention(lens, ks=(1, 2), n_random=20, alphas=(2.0,), seed=1)
    plan = analysis.resolve(adapter, samples)
    drawn = {layer for draw in plan.random for heads in draw for layer, _ in plan.heads(heads)}
    assert drawn and drawn <= softmax
    result = run(HeadIntervention(lens, ks=(1,), n_random=3, alphas=(2.0,)), loaded, samples, batch_size=2)
    assert result.follows_random_draw.sizes["draw"] == 3
