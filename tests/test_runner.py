"""One runner for every analysis: the API and the command line give identical data and the same
``attrs["config"]`` on the organism, and the CLI writes its result file once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import xarray as xr

from anchors.cli import main
from anchors.datasets import VARIANTS, DataFolder
from anchors.datasets.subset import Subset
from anchors.errors import InputError
from anchors.experiments import HeadIntervention, KnockoutProfile, LensProfile, PositionControls
from anchors.models import ModelSpec
from anchors.organism.task import write_data
from anchors.results import load
from anchors.runner import run
from anchors.runner.in_flight import in_flight

import anchors.results.provenance as provenance
import anchors.runner.batches as batches


@pytest.fixture(scope="module")
def organism_data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("organism") / "data", 4, control_variants=VARIANTS, n_controls=2)


@pytest.fixture(scope="module")
def api_lens(organism_data) -> xr.Dataset:
    model = ModelSpec("organism")
    return run(LensProfile(top_k=3), model, DataFolder.open(organism_data).traced(model.adapter().tokenizer), batch_size=4)


def _cli(monkeypatch, tmp_path, argv: list[str]) -> xr.Dataset:
    """Run the CLI in-process, counting the writes of its output file."""
    out, writes = tmp_path / "cli.nc", []
    real_save = batches.save

    def counting(dataset, path, groups=None):
        writes.append(Path(path))
        return real_save(dataset, path, groups)

    monkeypatch.setattr(batches, "save", counting)  # the batches' parts
    monkeypatch.setattr(provenance, "save", counting)  # the result, through write_result
    assert main([*argv, "--model", "organism", "--batch-size", "4", "--quiet", "--out", str(out)]) == 0
    assert writes.count(out) == 1, writes
    return load(out)


CASES = {
    "knockout": (["--windows", "3", "--layers", "0", "1"], lambda lens: KnockoutProfile(windows=(3,), layers=(0, 1))),
    "lens": (["--top-k", "3"], lambda lens: LensProfile(top_k=3)),
    "intervene": (["--ks", "1", "2", "--n-random", "2", "--alphas", "1", "4"],
                  lambda lens: HeadIntervention(lens, ks=(1, 2), n_random=2, alphas=(1.0, 4.0))),
    "controls": (["--window", "3", "--layers", "0", "2"], lambda lens: PositionControls(window=3, layers=(0, 2))),
}


@pytest.mark.parametrize("command", list(CASES))
def test_api_and_cli_give_identical_data_and_config(command, organism_data, api_lens, monkeypatch, tmp_path):
    options, make = CASES[command]
    extra = []
    if command == "intervene":
        api_lens.to_netcdf(tmp_path / "lens.nc")
        extra = ["--lens", str(tmp_path / "lens.nc")]
    cli = _cli(monkeypatch, tmp_path, [command, "--data", str(organism_data), *options, *extra])
    model, folder = ModelSpec("organism"), DataFolder.open(organism_data)
    analysis = make(api_lens)
    samples = analysis.from_folder(folder, model.adapter().tokenizer, Subset(), lambda message: None)
    api = run(analysis, model, samples, batch_size=4)
    assert cli.attrs["config"] == api.attrs["config"]
    assert json.loads(cli.attrs["cli_config"])["data"] == str(organism_data) and "cli_config" not in api.attrs
    xr.testing.assert_identical(cli.drop_attrs(), api.drop_attrs())
    assert cli.sizes["sample"] == (2 if command == "controls" else 8)


def test_in_flight_keeps_at_most_n_running_and_yields_each_as_it_finishes():
    """Up to ``n`` batches at once; a batch that finishes early is yielded before a slower one
    started earlier; ``n`` = 1 runs in this thread, in order."""
    running, peak, lock = [0], [0], threading.Lock()

    def compute(index: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3 if index == 0 else 0.05)
        with lock:
            running[0] -= 1
        return index * 10

    results = list(in_flight(compute, range(6), 3))
    assert sorted(results) == [(i, i * 10) for i in range(6)] and peak[0] == 3
    assert results[0][0] != 0  # batch 0 sleeps longest: others finish first
    threads = []
    assert list(in_flight(lambda i: threads.append(threading.current_thread()) or i, range(3), 1)) == [(0, 0), (1, 1), (2, 2)]
    assert set(threads) == {threading.main_thread()}


def test_in_flight_stops_starting_batches_after_an_error_and_keeps_the_running_ones():
    """The first failure starts nothing new; the batches already running still come back (a
    resumable run writes them), then the error is raised."""
    started: list[int] = []

    def compute(index: int) -> int:
        started.append(index)
        if index == 1:
            raise RuntimeError("server gone")
        time.sleep(0.2)
        return index

    finished = []
    with pytest.raises(RuntimeError, match="server gone"):
        for index, _ in in_flight(compute, range(8), 3):
            finished.append(index)
    assert sorted(started) == [0, 1, 2] and sorted(finished) == [0, 2]


def test_in_flight_needs_a_remote_model(organism_data, tmp_path):
    """Refused before any weights load, from the API and the command line."""
    samples = DataFolder.open(organism_data).traced(ModelSpec("organism").adapter().tokenizer)
    with pytest.raises(InputError, match=r"in_flight=3 \(--in-flight\) .* add --remote"):
        run(LensProfile(), "organism", samples, in_flight=3)
    assert main(["lens", "--data", str(organism_data), "--model", "organism", "--in-flight", "3", "--quiet",
                 "--out", str(tmp_path / "lens.nc")]) == 2
    assert not (tmp_path / "lens.nc").exists()
