"""How fast ``anchors explore``'s page opens in headless Chromium (Debian's, through Selenium and
chromium-driver), for a run folder given and for a synthetic paper-scale run (2,000 samples,
28 layers × 28 heads, lens and knockout results, 576 image tokens per prompt): the time from
navigation to the first panel (the sample table and the first sample's facts and prompt), to its
first plots (after plotly.js is parsed), and from clicking a sample late in the list to its plots:
for the first load in a fresh browser (nothing cached) and the median of the later loads, and the
page's size on disk.

    .venv/bin/python benchmarks/explorer_load.py [--run runs/demo-...] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anchors.report.explorer import write_explorer  # noqa: E402
from tests.explorer_fixture import synthetic_run  # noqa: E402


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1500,2000"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def until(driver, script: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not driver.execute_script(script):
        if time.monotonic() > deadline:
            raise TimeoutError(script)
        time.sleep(0.01)


def load_once(driver, page: Path) -> dict[str, float]:
    driver.get("about:blank")
    driver.get(page.as_uri())
    until(driver, "return window.ANCHORS && ANCHORS.state.timings.firstPlots")
    timings = driver.execute_script("return ANCHORS.state.timings")
    until(driver, "return document.querySelectorAll('#samples tbody tr').length === ANCHORS.state.index.rows.length")
    rows = driver.find_elements("css selector", "#samples tbody tr")
    late = rows[int(len(rows) * 0.995) - 1]
    wanted = late.find_elements("css selector", "td")[0].text
    driver.execute_script("arguments[0].scrollIntoView()", late)
    started = time.monotonic()
    late.click()
    until(driver, f"return document.body.dataset.plotted === {json.dumps(wanted)}")
    return {"first panel (s)": timings["firstPanel"] / 1000, "first plots (s)": timings["firstPlots"] / 1000,
            "late sample (s)": time.monotonic() - started}


def measure(page: Path, repeats: int) -> dict[str, float]:
    driver = browser()
    try:
        runs = [load_once(driver, page) for _ in range(repeats)]
    finally:
        driver.quit()
    files = [page, *(f for f in (page.parent / "explore").rglob("*") if f.is_file())]
    cold = {f"{key}, first load": round(value, 2) for key, value in runs[0].items()}
    warm = {f"{key}, median of later loads": round(statistics.median(r[key] for r in runs[1:]), 2) for key in runs[0]}
    return cold | (warm if repeats > 1 else {}) | {"size (MB)": round(sum(f.stat().st_size for f in files) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="also measure this run folder's page (e.g. the demo's)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = {}
    if args.run:
        results[f"{args.run.name}"] = measure(write_explorer(args.run), args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        run = synthetic_run(Path(folder) / "paper", 2000, 28, 28, n_visual=576)
        started = time.monotonic()
        page = write_explorer(run)
        written = time.monotonic() - started
        results["synthetic paper-scale (2,000 samples, 28 × 28 heads)"] = measure(page, args.repeats) | {
            "anchors explore (s)": round(written, 1)}
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
