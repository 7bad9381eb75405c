"""Every ``>>>`` example in the package runs and prints what it says (doctest), on the organism.

Examples of the trace API share ``view`` and ``batch``, made as :mod:`anchors.tracer.model_view`'s
module docstring makes them."""

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
def shared() -> dict:
    import torch

    from anchors.organism.task import evaluation_set

    view = anchors.view("organism")
    batch = view.encode([e.prompt for e in evaluation_set(2, 0, held_out=False, prefix="d")])
    return {"anchors": anchors, "torch": torch, "view": view, "batch": batch}


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
