"""``anchors explore``: the page opens from disk in real headless Chromium (Debian's, driven by
Selenium through Debian's chromium-driver), a user filters, picks a failed sample, clicks a head,
and what it shows equals the NetCDF; data cannot script it; a paper-size run opens; and
``anchors roles --data DIR --sample ID``. Screenshots and timings go to each test's tmp_path."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from anchors.cli import main
from anchors.errors import InputError
from anchors.report.explorer import collect, write_explorer
from anchors.report.explorer_data import find_sources
from anchors.results.netcdf import load, load_group

from .explorer_fixture import HOSTILE, synthetic_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> Path:
    """The demo, as ``anchors demo`` runs it, on 4 samples per wording split (the default is 128)."""
    from anchors.organism.demo import run_demo

    out = tmp_path_factory.mktemp("demo") / "run"
    run_demo(out, n_samples=4, batch_size=8)
    return out


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "the explorer tests need Debian's chromium and chromium-driver (.ci/system-packages)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1500,2000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()


def _open(browser, page: Path) -> None:
    browser.get(page.as_uri())
    _wait(browser, lambda: browser.execute_script("return document.body.dataset.plotted || ''"))


def _wait(browser, condition, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out; browser log: {browser.get_log('browser')}")


def _errors(browser) -> list[dict]:
    return [entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]


def _shown(browser) -> dict:
    return browser.execute_script("""
        const panel = document.getElementById('panel-lens');
        return {id: document.body.dataset.shown, plotted: document.body.dataset.plotted,
                title: document.getElementById('sample-title').textContent,
                tokens: document.getElementById('tokens').textContent,
                facts: document.getElementById('facts').textContent,
                lens: panel.data ? panel.data.map(t => t.y) : null,
                heads: document.getElementById('panel-heads').data[0].z};""")


def _click_head(browser, layer: int, head: int) -> None:
    """Click the heatmap cell of (layer, head) where Plotly draws it."""
    from selenium.webdriver.common.action_chains import ActionChains

    x, y, width, height = browser.execute_script("""
        const gd = document.getElementById('panel-heads'), box = gd.getBoundingClientRect(), l = gd._fullLayout;
        return [l.xaxis._offset + l.xaxis.l2p(arguments[1]) - box.width / 2,
                l.yaxis._offset + l.yaxis.l2p(arguments[0]) - box.height / 2, box.width, box.height];""", layer, head)
    panel = browser.find_element("id", "panel-heads")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", panel)
    ActionChains(browser).move_to_element_with_offset(panel, int(x), int(y)).click().perform()


def _readout(browser, key: str) -> float:
    return float(browser.find_element("css selector", f'#readouts dd[data-key="{key}"]').text)


def test_demo_explorer_in_chromium(demo_run, browser, tmp_path):
    from selenium.webdriver.support.ui import Select

    page = demo_run / "explore.html"
    size = page.stat().st_size + sum(f.stat().st_size for f in (demo_run / "explore").rglob("*") if f.is_file())
    assert size <= 15 * 2**20, f"{size / 2**20:.1f} MB"
    assert 'href="explore.html"' in (demo_run / "report.html").read_text()
    _open(browser, page)
    timings = browser.execute_script("return ANCHORS.state.timings")
    before = _shown(browser)
    # the region box over the image; hovering the image tokens draws each one's rectangle
    from selenium.webdriver.common.action_chains import ActionChains

    overlay = "return [...document.querySelectorAll('#overlay rect')].map(r => r.getAttribute('class'))"
    assert browser.execute_script(overlay) == ["region-box"]
    ActionChains(browser).move_to_element(browser.find_element("css selector", "#tokens .image-tokens")).perform()
    drawn = _wait(browser, lambda: browser.execute_script(overlay) if len(browser.execute_script(overlay)) > 1 else None)
    assert sum(c.startswith("token-box") for c in drawn) == 4 and drawn[-1] == "region-box"
    assert "image tokens overlap it" in browser.find_element("id", "picture-caption").text
    browser.save_screenshot(str(tmp_path / "explorer-demo-first.png"))

    Select(browser.find_element("id", "filter-followed")).select_by_visible_text("failed")
    Select(browser.find_element("id", "sort")).select_by_visible_text("largest knockout effect")
    rows = browser.find_elements("css selector", "#samples tbody tr")
    assert rows and all(r.find_element("css selector", 'td[data-column="followed"]').text == "failed" for r in rows)
    chosen = rows[0].find_elements("css selector", "td")[0].text
    rows[0].click()
    _wait(browser, lambda: browser.execute_script("return document.body.dataset.plotted") == chosen)
    after = _shown(browser)
    assert after["id"] == chosen != before["id"] and after["title"] == f"sample {chosen}"
    assert after["tokens"] != before["tokens"] and after["lens"] != before["lens"] and after["heads"] != before["heads"]
    assert "failed" in after["facts"]

    Select(browser.find_element("id", "pick-layer")).select_by_index(2)
    Select(browser.find_element("id", "pick-pathway")).select_by_index(1)
    _click_head(browser, 1, 3)
    _wait(browser, lambda: browser.find_elements("css selector", '#readouts dd[data-key="head"]'))
    assert browser.find_element("id", "head-detail").text.startswith("head 3 of layer 1: attribution")
    browser.save_screenshot(str(tmp_path / "explorer-demo-failed-sample-head.png"))

    lens, knockout = load(demo_run / "lens.nc").sel(sample=chosen), load(demo_run / "knockout.nc").sel(sample=chosen)
    pathway = str(knockout.pathway.values[1])
    generated = lens.readout_generated.sel(layer=2, site="post")
    expected = {
        "lens:instruction tokens": float(lens.margin.sel(layer=2, site="post")),
        "lens:answer position": float(generated.sel(subspace="compliant") - generated.sel(subspace="competing")),
        "knockout": float(knockout.nssd.sel(pathway=pathway, window=json.loads(knockout.attrs["config"])["main_window"],
                                            layer=2)),
        "head": float(lens.head_attribution.sel(layer=1, head=3)),
    }
    for key, value in expected.items():
        assert _readout(browser, key) == pytest.approx(value, rel=1e-3, abs=1e-6), key

    from selenium.webdriver.common.keys import Keys
    browser.find_element("tag name", "body").send_keys(Keys.ARROW_DOWN)
    visible = [r.find_elements("css selector", "td")[0].text for r in browser.find_elements("css selector", "#samples tbody tr")]
    if len(visible) > 1:
        _wait(browser, lambda: browser.execute_script("return document.body.dataset.shown") == visible[1])
    assert not _errors(browser)
    (tmp_path / "timings.json").write_text(json.dumps(timings))


def test_data_cannot_script_the_page(browser, tmp_path):
    from selenium.common.exceptions import NoAlertPresentException

    run = synthetic_run(tmp_path / "run", 4, 3, 4, n_visual=3, hostile=True)
    _open(browser, write_explorer(run))
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - raises when no dialog opened
    shown = _shown(browser)
    assert shown["title"] == 'sample <b id="x">s0</b>'
    assert all(t in shown["tokens"] for t in ("<script>", "alert(1)", "</script>", "<br>", *HOSTILE["tokens"]))
    assert HOSTILE["answer"] in shown["facts"]
    table = browser.find_element("id", "samples").text
    assert '<b id="x">s1</b>' in table and HOSTILE["answer"] in table
    created = browser.execute_script("return document.querySelectorAll('b, i, br, #x, img[src=x], img[src=y]').length")
    assert created == 0 and browser.execute_script("return document.querySelectorAll('img').length") == 1
    assert not _errors(browser)
    browser.save_screenshot(str(tmp_path / "explorer-hostile.png"))


def test_paper_scale_run_opens_and_shows_a_late_sample(browser, tmp_path):
    run = synthetic_run(tmp_path / "run", 2000, 28, 28, n_visual=64)  # benchmarks/explorer_load.py: 576
    started = time.monotonic()
    _open(browser, write_explorer(run))
    opened = time.monotonic() - started
    _wait(browser, lambda: len(browser.find_elements("css selector", "#samples tbody tr")) == 2000)
    last = browser.find_elements("css selector", "#samples tbody tr")[1990]
    browser.execute_script("arguments[0].scrollIntoView()", last)
    picked = time.monotonic()
    last.click()
    _wait(browser, lambda: browser.execute_script("return document.body.dataset.plotted") == "s01990")
    late = time.monotonic() - picked
    shown = _shown(browser)
    assert len(shown["heads"]) == 28 and len(shown["heads"][0]) == 28 and "<image> × 64" in shown["tokens"]
    expected = load(run / "lens.nc").head_attribution.sel(sample="s01990").values
    assert np.allclose(np.array(shown["heads"], dtype=float), expected, rtol=1e-5)
    assert not _errors(browser)
    timings = browser.execute_script("return ANCHORS.state.timings")
    (tmp_path / "timings.json").write_text(json.dumps({**timings, "late_sample_s": late, "open_s": opened}))
    browser.save_screenshot(str(tmp_path / "explorer-paper-scale.png"))


def test_results_carry_each_samples_tokens_roles_and_image(demo_run):
    samples = load_group(demo_run / "lens.nc", "samples")
    first = samples.isel(sample=0)
    n = int(first.n_tokens)
    roles = [str(r) for r in first.token_role.values[:n]]
    assert {"context", "question", "instruction_semantic", "generated"} <= set(roles)
    assert {"region", "off_region"} & set(roles)  # the organism's images carry the shape's box
    visual = np.isin(first.token_role.values[:n], ["region", "off_region"])
    assert np.isfinite(first.token_box.values[:n][visual]).all() and np.isnan(first.token_box.values[:n][~visual]).all()
    assert str(first.image.values) == f"data/images/{first.sample.item()}.png"  # relative to the result's folder
    assert (demo_run / str(first.image.values)).is_file()
    text = "".join(str(t) for t, r in zip(first.token.values[:n], roles) if r == "context")
    context = next(json.loads(line) for line in (demo_run / "data" / "samples.jsonl").read_text().splitlines()
                   if json.loads(line)["sample_id"] == first.sample.item())["segments"][0][1]
    assert text.strip() == context
    assert load_group(demo_run / "controls.nc", "samples") is None  # several prompt variants per id


def test_panels_whose_result_is_missing_are_left_out(demo_run, tmp_path):
    shutil.copy(demo_run / "knockout.nc", tmp_path / "knockout.nc")
    index, samples = collect(find_sources(tmp_path, log=lambda m: None))
    assert index["meta"]["lens"] == [] and index["meta"]["interventions"] == [] and "heads" not in samples[0]
    assert len(samples[0]["knockout"]) == 6
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no lens, knockout or head-intervention result"):
        write_explorer(empty)
    assert list(empty.iterdir()) == []


def test_roles_of_a_data_sample(demo_run, capsys):
    assert main(["roles", "--data", str(demo_run / "data"), "--sample", "in0"]) == 0
    out = capsys.readouterr().out
    assert "visual" in out and "instruction_semantic" in out and "Ġ" not in out
    context = json.loads((demo_run / "data" / "samples.jsonl").read_text().splitlines()[0])["segments"][0][1]
    assert context in out
    assert main(["roles", "--data", str(demo_run / "data"), "--sample", "in9x"]) == 2
    assert "close matches: in" in capsys.readouterr().err


def test_explore_command(demo_run, capsys):
    assert main(["explore", str(demo_run)]) == 0
    assert capsys.readouterr().out.strip().endswith("explore.html")
    assert main(["explore", str(demo_run / "nowhere")]) == 2
