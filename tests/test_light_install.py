"""A colleague who only reads results installs the package without extras: no torch, torchvision,
transformers or nnsight; ``plot``, ``report``, ``explore`` and ``heads`` work, and a command that loads a model
exits 2 naming the extra. Built for real in a fresh virtual environment (slow: a pip install)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures"


@pytest.mark.slow
def test_the_light_install_reads_results_and_names_the_extra_for_tracing(tmp_path):
    uv = Path(sys.executable).with_name("uv")  # make installs it; pip does the same, slower
    env = tmp_path / "light"
    venv.create(env, with_pip=not uv.exists())
    python, anchors = env / "bin" / "python", env / "bin" / "anchors"
    installer = [uv, "pip", "install", "--python", python] if uv.exists() else [python, "-m", "pip", "install"]
    install = subprocess.run([*installer, "-q", str(ROOT)], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    site = next((env / "lib").glob("python*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert "instruction_anchors" in installed and "xarray" in installed, installed
    assert not installed & {"torch", "torchvision", "transformers", "nnsight"}, installed

    run = tmp_path / "run"
    run.mkdir()
    for name in ("lens", "knockout", "heads"):
        shutil.copy(FIXTURES / f"{name}.nc", run / f"{name}.nc")

    def anchors_(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([anchors, *args], capture_output=True, text=True, cwd=tmp_path, timeout=300)

    plotted = anchors_("plot", str(run / "knockout.nc"), "--out", str(tmp_path / "figures"))
    assert plotted.returncode == 0, plotted.stderr[-2000:]
    assert list((tmp_path / "figures").glob("*.png"))
    ranked = anchors_("heads", str(run / "lens.nc"), "--top", "3", "--format", "csv", "--out", str(run / "ranking.nc"))
    assert ranked.returncode == 0 and len(ranked.stdout.strip().splitlines()) == 1 + 2 * 3, ranked.stderr[-2000:]
    explored = anchors_("explore", str(run))
    assert explored.returncode == 0 and (run / "explore" / "chunk-0000.js").is_file(), explored.stderr[-2000:]
    reported = anchors_("report", str(run))
    assert reported.returncode == 0 and Path(reported.stdout.strip()).is_file(), reported.stderr[-2000:]
    assert 'href="explore.html"' in (run / "report.html").read_text()
    traced = anchors_("lens", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "x.nc"))
    assert traced.returncode == 2, traced.stderr
    assert "needs the 'trace' extra" in traced.stderr and "instruction-anchors[trace]" in traced.stderr
    assert "Traceback" not in traced.stderr
    no_torch = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert no_torch.returncode != 0 and sys.executable != str(python)
