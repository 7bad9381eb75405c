"""Every ``>>>`` example in the package runs and prints what it says (doctest), on the organism,
and every public name has one.

Examples of the trace API share ``view`` and ``batch``, made as :mod:`anchors.tracer.model_view`'s
module docstring makes them; the analyses' share ``samples`` (four of the organism's, from the data
folder ``data``); ``tmp`` is a scratch folder."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import anchors

PACKAGE = Path(anchors.__file__).parent
MODULES = sorted(
    ".".join(("anchors", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py") if ">>>" in path.read_text()
)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    import torch

    from anchors.datasets import DataFolder
    from anchors.organism.task import evaluation_set, write_data

    view = anchors.view("organism")
    batch = view.encode([e.prompt for e in evaluation_set(2, 0, held_out=False, prefix="d")])
    tmp = tmp_path_factory.mktemp("doctests")
    data = write_data(tmp / "data", 2)
    samples = DataFolder.open(data).traced(anchors.ModelSpec("organism").adapter().tokenizer)
    return {"anchors": anchors, "torch": torch, "view": view, "batch": batch, "samples": samples, "data": data,
            "tmp": tmp}


def test_every_public_name_has_an_example():
    data = {"ROLES", "POINTS", "RECORDS", "__version__"}  # values: their modules' examples show them
    missing = [name for name in anchors.__all__ if name not in data and ">>>" not in (getattr(anchors, name).__doc__ or "")]
    assert not missing, missing


def test_the_public_trace_api_has_examples():
    assert {"anchors.tracer.model_view", "anchors.tracer.positions", "anchors.models.spec"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name, shared):
    module = importlib.import_module(name)
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = [t for t in finder.find(module, name, globs={**vars(module), **shared}) if t.examples]
    assert tests, f"{name} has '>>>' in its source but no example doctest finds"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (output above)"
