"""Every figure renders from a stored NetCDF fixture, with no model, into a non-trivial PNG; the
HTML report opens in headless Chromium with its figures visible."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from anchors.report import FIGURES, write_report
from anchors.report.figures import render
from anchors.results import load

FIXTURES = Path(__file__).parent / "fixtures"
RESULT_FILES = {"knockout_profile": "knockout.nc", "lens_profile": "lens.nc", "head_intervention": "heads.nc",
                "position_controls": "controls.nc", "capability": "capability.nc",
                "caption_conflict": "caption_conflict.nc", "organism_agreement": "agreement.nc",
                "head_ranking": "ranking.nc", "image_attention": "image_attention/image_attention.nc"}
CASES = [(experiment, name) for experiment, figures in FIGURES.items() for name in figures]


def _non_trivial(path: Path) -> None:
    image = np.asarray(Image.open(path).convert("RGB"))
    height, width, _ = image.shape
    assert width >= 400 and height >= 300, (width, height)
    ink = (image.min(axis=2) < 235).mean()
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    assert ink > 0.02 and colours > 50, (ink, colours)


@pytest.mark.parametrize("experiment,name", CASES, ids=[n for _, n in CASES])
def test_figure_renders_from_stored_result(tmp_path, experiment, name):
    ds = load(FIXTURES / RESULT_FILES[experiment])
    assert ds.attrs["experiment"] == experiment
    figure = FIGURES[experiment][name](ds)
    figure.savefig(tmp_path / f"{name}.png", dpi=100)
    _non_trivial(tmp_path / f"{name}.png")


def test_render_writes_png_and_svg(tmp_path):
    written = render(load(FIXTURES / "knockout.nc"), tmp_path, stem="k-").written
    assert {p.name for p in written} == {"k-fig2_knockout_nssd.png", "k-fig6_window_sensitivity.png",
                                         "k-fig3c_generated_necessity.png"}
    assert all(p.with_suffix(".svg").read_text().lstrip().startswith("<?xml") for p in written)


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("headless Chromium is required for the report test: apt-get install chromium (.ci/run does)")


def test_report_opens_in_headless_chromium_with_figures_visible(tmp_path):
    for name in RESULT_FILES.values():
        source = FIXTURES / name
        if source.parent != FIXTURES:  # a result in its own folder, with the data folder its overlays read
            shutil.copytree(source.parent, tmp_path, dirs_exist_ok=True)
        else:
            shutil.copy(source, tmp_path / name)
    report = write_report(tmp_path)
    assert "could not be drawn" not in report.read_text()
    shot = tmp_path / "shot.png"
    profile = tmp_path / "profile"
    subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--window-size=1280,9000", f"--screenshot={shot}", report.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[1] == 1280

    def near(colour: tuple[int, int, int]) -> int:
        return int((np.abs(image - np.array(colour)).sum(axis=2) < 40).sum())

    # the palette's blue and orange appear only inside the embedded figures
    assert near((0, 114, 178)) > 2000 and near((230, 159, 0)) > 1000
    assert (image.min(axis=2) < 200).mean() > 0.02


def test_fig4_and_fig5a_show_text_and_vision_following_separately():
    lens = load(FIXTURES / "lens.nc")
    fig4 = FIGURES["lens_profile"]["fig4_subspace_evolution"](lens)
    titles = [ax.get_title() for ax in fig4.axes if ax.get_title()]
    assert len(titles) == 6 and sum(t.startswith("text following") for t in titles) == 3
    assert sum(t.startswith("vision following") for t in titles) == 3
    fig5a = FIGURES["lens_profile"]["fig5a_attention_subspaces"](lens)
    assert [ax.get_title().split(" (")[0] for ax in fig5a.axes] == ["text following", "vision following"]
    for figure in (fig4, fig5a):
        plt.close(figure)
