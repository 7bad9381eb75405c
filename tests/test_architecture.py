"""The package's structure as checked facts: the layers contract (and that an upward import breaks
it), plotting without torch, inputs refused before any weights load, internal errors exit 1."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import anchors
from anchors.cli import main
from anchors.models.tiny import tiny_folder

from .mc2_fixture import write_image

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
LINT = str(Path(sys.executable).with_name("lint-imports"))
ANCHORS = str(Path(sys.executable).with_name("anchors"))


def _lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([LINT, "--no-logo", "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_layers_contract_holds_and_an_upward_import_breaks_it(tmp_path):
    assert _lint(ROOT).returncode == 0
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "anchors", copy / "anchors", ignore=shutil.ignore_patterns("checkpoints", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    readouts = copy / "anchors" / "readouts" / "metrics.py"
    readouts.write_text(readouts.read_text() + "\nfrom ..experiments import lens  # upward: readouts -> experiments\n")
    broken = _lint(copy)
    assert broken.returncode != 0 and "anchors.readouts.metrics -> anchors.experiments" in broken.stdout, broken.stdout


@pytest.mark.parametrize("module", ["interventions", "readouts", "datasets", "report"])
def test_lower_packages_import_nothing_above_them(module):
    """The contract, stated directly for the packages the design names."""
    above = {"interventions": ("tracer", "experiments", "runner", "datasets", "report", "organism", "cli"),
             "readouts": ("tracer", "experiments", "runner", "datasets", "report", "organism", "cli"),
             "datasets": ("experiments", "runner", "report", "organism", "cli", "console"),
             "report": ("runner", "organism", "cli", "console", "experiments", "tracer", "models")}[module]
    for path in (ROOT / "anchors" / module).rglob("*.py"):
        text = path.read_text()
        for name in above:
            assert f"from ..{name}" not in text and f"from ...{name}" not in text and f"anchors.{name}" not in text, (path, name)


def test_plot_and_report_load_neither_torch_nor_nnsight(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("knockout.nc", "lens.nc"):
        shutil.copy(FIXTURES / name, run_dir / name)
    shutil.copytree(FIXTURES / "image_attention", run_dir, dirs_exist_ok=True)  # overlays read its data folder's images
    code = (f"import sys; from anchors.cli import main; "
            f"assert main(['plot', {str(run_dir / 'lens.nc')!r}, '--quiet']) == 0; "
            f"assert main(['plot', {str(run_dir / 'image_attention.nc')!r}, '--quiet']) == 0; "
            f"assert main(['report', {str(run_dir)!r}, '--quiet']) == 0; "
            "print(sorted(m for m in ('torch', 'nnsight', 'transformers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert "could not be drawn" not in (run_dir / "report.html").read_text()
    assert {p.name for p in (run_dir / "figures").glob("image_attention-*.png")} == {
        "image_attention-image_overlays.png", "image_attention-region_mass_by_layer.png"}


@pytest.fixture(scope="module")
def weightless(tmp_path_factory) -> Path:
    """A real tiny checkpoint folder with its weights removed: any command that gets as far as
    loading weights fails differently from the input errors checked here."""
    folder = tmp_path_factory.mktemp("weightless") / "model"
    shutil.copytree(tiny_folder("qwen2_5_vl"), folder)
    (folder / "model.safetensors").unlink()
    return folder


@pytest.fixture(scope="module")
def long_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("long")
    write_image(root / "0.jpg", 0)
    record = {"id": "r0", "image": "0.jpg", "context": "The ball is red. " * 200, "question": "What color is the ball?",
              "answer_vision": "red", "answer_text": "green", "task": "color"}
    (root / "records.jsonl").write_text(json.dumps(record) + "\n")
    assert main(["data", "build", "--jsonl", str(root / "records.jsonl"), "--out", str(root / "data"), "--quiet"]) == 0
    return root / "data"


def _refused(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]
    assert lines and "Traceback" not in "\n".join(lines)
    return lines[-1]


def test_inputs_are_refused_before_any_weights_load(capsys, tmp_path, weightless, long_data):
    model = ["--model", str(weightless), "--quiet"]
    lens = ["lens", *model, "--data", str(long_data)]
    assert "--data /nowhere: no such folder" in _refused(capsys, ["lens", *model, "--data", "/nowhere", "--out", str(tmp_path / "a.nc")])
    (tmp_path / "file").write_text("")
    assert "cannot write there" in _refused(capsys, [*lens, "--out", str(tmp_path / "file" / "a.nc")])
    assert "the prompt is" in (line := _refused(capsys, [*lens, "--out", str(tmp_path / "a.nc")]))
    assert "longer than the model's context of 512" in line and not (tmp_path / "a.nc").exists()
    knockout = FIXTURES / "knockout.nc"
    assert "is a knockout_profile result; expected lens_profile" in _refused(capsys, ["heads", str(knockout)])
    assert "expected lens_profile" in _refused(
        capsys, ["intervene", *model, "--data", str(long_data), "--lens", str(knockout), "--out", str(tmp_path / "b.nc")])
    (tmp_path / "junk.nc").write_text("not netcdf")
    assert "junk.nc: not a readable NetCDF result" in _refused(capsys, ["plot", str(tmp_path / "junk.nc")])
    with_rank = tmp_path / "ranking.nc"
    assert main(["heads", str(FIXTURES / "lens.nc"), "--out", str(with_rank), "--quiet"]) == 0
    assert "is a head_ranking result; expected lens_profile" in _refused(
        capsys, ["intervene", *model, "--data", str(long_data), "--lens", str(with_rank), "--out", str(tmp_path / "c.nc")])
    (tmp_path / "dir.nc").mkdir()
    assert "dir.nc: is a folder, not a result file" in _refused(capsys, ["plot", str(tmp_path / "dir.nc")])


def test_an_internal_error_exits_1_with_its_traceback(capsys, monkeypatch):
    from anchors.report import html

    def broken(run_dir, log=None):
        raise RuntimeError("a bug")

    monkeypatch.setattr(html, "write_report", broken)
    monkeypatch.setattr("anchors.report.write_report", broken)
    assert main(["report", str(FIXTURES)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "anchors: internal error: a bug" in err


def test_public_names_resolve_lazily():
    for name in anchors.__all__:
        assert getattr(anchors, name) is not None, name
