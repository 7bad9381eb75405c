"""One runner for every analysis: the API and the command line give identical data and the same
``attrs["config"]`` on the organism, and the CLI writes its result file once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr

from anchors.cli import main
from anchors.datasets import VARIANTS, DataFolder
from anchors.datasets.subset import Subset
from anchors.experiments import HeadIntervention, KnockoutProfile, LensProfile, PositionControls
from anchors.models import ModelSpec
from anchors.organism.task import write_data
from anchors.results import load
from anchors.runner import run

import anchors.results.provenance as provenance
import anchors.runner.resumable as run_module


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
    real_save = run_module.save

    def counting(dataset, path, groups=None):
        writes.append(Path(path))
        return real_save(dataset, path, groups)

    monkeypatch.setattr(run_module, "save", counting)  # the batches' parts
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
