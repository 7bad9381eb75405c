"""The ``anchors`` command line on a tiny model: through its real entry point (subprocesses) where
the process matters (the data build, plot, report, a run killed part-way), in-process through
``main`` elsewhere (the same code from argument parsing on, without a torch import per command)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

from anchors.cli import main
from anchors.results import load

from .mc2_fixture import write_image

ANCHORS = str(Path(sys.executable).with_name("anchors"))
MODEL = ["--model", "tiny:qwen2_5_vl"]
RECORDS = [("red", "green", "color"), ("tennis", "soccer", "sport_recognition"),
           ("happy", "sad", "sentiment_understanding"), ("left", "right", "positional_reasoning")]


def run(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([ANCHORS, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    if check and done.returncode != 0:
        raise AssertionError(f"anchors {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done


def anchors(*args: str) -> str:
    """``anchors ARGS`` in this process: its stderr; fails with it unless it exits 0."""
    import io
    from contextlib import redirect_stderr

    err = io.StringIO()
    with redirect_stderr(err):
        code = main(list(args))
    assert code == 0, f"anchors {' '.join(args)} exited {code}:\n{err.getvalue()[-3000:]}"
    return err.getvalue()


def refused(capsys, *args: str) -> tuple[int, str]:
    """Exit code and stderr of ``anchors ARGS`` in this process (argparse's own errors included)."""
    try:
        code = main(list(args))
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    rows = []
    for i, (vision, text, task) in enumerate(RECORDS):
        write_image(root / "images" / f"{i}.jpg", i)
        rows.append({"id": f"r{i}", "image": f"images/{i}.jpg", "context": f"The passage says {text}.",
                     "question": "What is the answer?", "answer_vision": vision, "answer_text": text, "task": task})
    (root / "records.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    done = run("data", "build", "--jsonl", str(root / "records.jsonl"), "--variants", "default", "swapped",
               "system_before", "system_between", "--out", str(root / "data"), "--quiet")
    assert done.stdout.strip() == str(root / "data")
    return root / "data"


@pytest.mark.slow
def test_every_command_runs_and_writes_its_output(data, tmp_path):
    samples = [json.loads(line) for line in (data / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 4 * 2 * 4
    common = [*MODEL, "--data", str(data), "--batch-size", "4", "--quiet"]
    anchors("knockout", *common, "--windows", "1", "3", "--out", str(tmp_path / "knockout.nc"))
    anchors("knockout", *common, "--windows", "1", "--method", "atp+verify", "--verify-top", "1", "--max-batch-rows", "8",
        "--out", str(tmp_path / "screen" / "knockout.nc"))
    screen = load(tmp_path / "screen" / "knockout.nc")
    assert screen.attrs["method"] == "atp+verify" and screen.exact.any() and not screen.exact.all()
    anchors("lens", *common, "--top-k", "3", "--out", str(tmp_path / "lens.nc"))
    ranking = run("heads", str(tmp_path / "lens.nc"), "--top", "3", "--format", "csv", "--out", str(tmp_path / "ranking.nc"))
    assert len(ranking.stdout.strip().splitlines()) == 1 + 2 * 3 and (tmp_path / "ranking.nc").is_file()
    anchors("intervene", *common, "--lens", str(tmp_path / "lens.nc"), "--ks", "1", "2", "--n-random", "2",
        "--alphas", "1", "2", "--out", str(tmp_path / "heads.nc"))
    anchors("controls", *common, "--window", "3", "--out", str(tmp_path / "controls.nc"))
    for name, experiment in (("knockout", "knockout_profile"), ("lens", "lens_profile"),
                             ("heads", "head_intervention"), ("controls", "position_controls")):
        ds = load(tmp_path / f"{name}.nc")
        assert ds.attrs["experiment"] == experiment and ds.attrs["model"] == "tiny:qwen2_5_vl"
        assert json.loads(ds.attrs["cli_config"])["data"] == str(data)
    assert load(tmp_path / "knockout.nc").sizes["sample"] == 8
    assert load(tmp_path / "controls.nc").sizes["variant"] == 4
    figures = run("plot", str(tmp_path / "lens.nc"), "--out", str(tmp_path / "figures")).stdout.split()
    assert figures and all(Path(f).is_file() and Path(f).with_suffix(".svg").is_file() for f in figures)
    report = Path(run("report", str(tmp_path)).stdout.strip())
    assert report.name == "report.html" and "data:image/png;base64," in report.read_text()
    roles = run("roles", *MODEL)
    assert "instruction_semantic" in roles.stdout and "visual" in roles.stdout  # a subprocess: the table on stdout


def test_config_file_supplies_options_and_flags_win(data, tmp_path):
    (tmp_path / "opts.toml").write_text(f'model = "tiny:qwen2_5_vl"\nbatch_size = 4\n[lens]\ntop_k = 2\ndata = "{data}"\n')
    anchors("lens", "--config", str(tmp_path / "opts.toml"), "--top-k", "4", "--no-heads", "--quiet", "--out", str(tmp_path / "l.nc"))
    config = json.loads(load(tmp_path / "l.nc").attrs["cli_config"])
    assert (config["top_k"], config["batch_size"], config["model"]) == (4, 4, "tiny:qwen2_5_vl")


BAD = [
    (["knockout", "--data", "x"], "the following arguments are required: --out"),
    (["lens", *MODEL, "--data", "/nowhere", "--out", "x.nc"], "--data /nowhere: no such folder"),
    (["knockout", *MODEL, "--data", "{data}", "--pathways", "sideways", "--out", "x.nc"], "pathways: 'sideways' is neither"),
    (["knockout", *MODEL, "--data", "{data}", "--layers", "9", "--out", "x.nc"], "layers [9] outside 0…2"),
    (["lens", "--model", "tiny:gpt2", "--data", "{data}", "--out", "x.nc"], "no tiny model 'gpt2'"),
    (["plot", "missing.nc"], "missing.nc: no such file"),
    (["lens", *MODEL, "--data", "{data}", "--batch-size", "0", "--out", "x.nc"], "must be a positive integer"),
    (["data", "build", "--jsonl", "{data}/../records.jsonl", "--tasks", "color", "--out", "{data}/../strict"],
     "field 'task': unknown task 'sport_recognition'"),
    (["lens", "--config", "{data}/../bad.toml", "--out", "x.nc"], "unknown option(s) for 'lens': colour"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(b[0][:2]) + f"-{i}" for i, b in enumerate(BAD)])
def test_bad_options_and_inputs_exit_2_with_one_line(data, tmp_path, args, message, capsys, monkeypatch):
    (data.parent / "bad.toml").write_text('colour = "red"\n')
    monkeypatch.chdir(tmp_path)
    code, err = refused(capsys, *[a.format(data=data) for a in args])
    assert code == 2, err
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert message in lines[-1]
    assert "Traceback" not in err


@pytest.mark.slow
def test_changed_config_with_existing_output_is_refused(data, tmp_path, capsys):
    common = [*MODEL, "--data", str(data), "--batch-size", "4", "--quiet", "--no-heads", "--out", str(tmp_path / "l.nc")]
    anchors("lens", *common, "--top-k", "2")
    code, err = refused(capsys, "lens", *common, "--top-k", "3")
    assert code == 2 and "made with another configuration" in err
    anchors("lens", *common, "--top-k", "3", "--overwrite")
    assert json.loads(load(tmp_path / "l.nc").attrs["cli_config"])["top_k"] == 3


def _kill_part_way(command: list[str], cwd: Path, parts: Path) -> list[str]:
    """Start ``anchors COMMAND`` and SIGKILL it once its second batch is written; the parts left."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen([ANCHORS, *command], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not (parts / "batch-00001.nc").exists():
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = sorted(p.name for p in parts.glob("batch-*.nc"))
    assert 2 <= len(done_before) < 8, done_before  # killed part-way
    assert not (cwd / "result.nc").exists()
    return done_before


def _in(folder: Path, monkeypatch, command: list[str]) -> str:
    """Run ``anchors COMMAND`` in this process from ``folder``; its stderr."""
    monkeypatch.chdir(folder)
    return anchors(*command)


@pytest.mark.slow
def test_sweep_killed_part_way_resumes_to_the_uninterrupted_result(data, tmp_path, monkeypatch):
    command = ["knockout", *MODEL, "--data", str(data), "--batch-size", "1", "--windows", "1", "3", "--out", "result.nc"]
    first, second = tmp_path / "interrupted", tmp_path / "uninterrupted"
    first.mkdir(), second.mkdir()
    parts = first / "result.nc.parts"
    done_before = _kill_part_way(command, first, parts)
    resumed = _in(first, monkeypatch, command)
    skipped = [l for l in resumed.splitlines() if "already done, skipped" in l]
    assert len(skipped) == len(done_before)
    _in(second, monkeypatch, command)
    xr.testing.assert_identical(load(first / "result.nc"), load(second / "result.nc"))
    assert not parts.exists()


@pytest.mark.slow
def test_intervene_killed_part_way_resumes_to_the_uninterrupted_result(data, tmp_path, monkeypatch):
    lens = tmp_path / "lens.nc"
    anchors("lens", *MODEL, "--data", str(data), "--batch-size", "4", "--quiet", "--out", str(lens))
    command = ["intervene", *MODEL, "--data", str(data), "--lens", str(lens), "--batch-size", "1", "--ks", "1", "2",
               "--n-random", "2", "--alphas", "1", "2", "--out", "result.nc"]
    first, second = tmp_path / "interrupted", tmp_path / "uninterrupted"
    first.mkdir(), second.mkdir()
    parts = first / "result.nc.parts"
    done_before = _kill_part_way(command, first, parts)
    resumed = _in(first, monkeypatch, command)
    assert len([l for l in resumed.splitlines() if "already done, skipped" in l]) == len(done_before)
    _in(second, monkeypatch, command)
    interrupted, uninterrupted = load(first / "result.nc"), load(second / "result.nc")
    xr.testing.assert_identical(interrupted.drop_attrs(), uninterrupted.drop_attrs())
    assert interrupted.attrs["config"] == uninterrupted.attrs["config"] and not parts.exists()
