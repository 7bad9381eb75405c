"""The shipped organism: recorded behaviour, a reproducible training smoke run, and heads that
the toolkit's attribution finds and that causally drive modality following."""

from __future__ import annotations

import json

import numpy as np
import pytest

from anchors.datasets import to_traced, tokenise
from anchors.organism import ORGANISMS, load_organism, organism_path
from anchors.organism.task import dictionaries, evaluation_set, to_modality_samples
from anchors.organism.train import SMOKE, train_model
from anchors.readouts.metrics import decide
from anchors.tracer import experiments as ex
from anchors.tracer.samples import batches
from anchors.tracer.run import trace_batch


def _record(name: str) -> dict:
    return json.loads((organism_path(name) / "organism.json").read_text())


def _traced(loaded, examples, tmp_path):
    samples = to_modality_samples(examples, tmp_path / "images")
    kept, report = tokenise(samples, dictionaries(), loaded.adapter.tokenizer)
    assert report.kept == len(samples)
    return to_traced(kept)


def _mfr_by_intent(loaded, traced) -> dict[str, float]:
    answers = []
    for _, _, batch, space in batches(loaded.adapter, traced, 50):
        answers += decide(trace_batch(loaded, batch, space)["top_token"], space)
    return {m: float(np.mean([a == "compliant" for a, s in zip(answers, traced) if s.instructed == m]))
            for m in ("text", "vision")}


@pytest.mark.parametrize("name", ORGANISMS)
def test_shipped_organism_follows_held_in_and_partly_held_out_wordings(name, tmp_path):
    loaded = load_organism(name)
    record = _record(name)
    for split, seed, held_out in (("held_in", 12345, False), ("held_out", 12346, True)):
        traced = _traced(loaded, evaluation_set(400, seed, held_out=held_out, prefix=split), tmp_path / split)
        measured = _mfr_by_intent(loaded, traced)
        for modality, value in measured.items():
            # the toolkit's MFR (nnsight trace, dictionary decision) reproduces the recorded metric
            assert value == pytest.approx(record["metrics"][split][f"follow_{modality}"], abs=1e-9)
            if held_out:
                assert 0.60 <= value <= 0.90, (split, modality, value)
            else:
                assert value >= 0.95, (split, modality, value)


@pytest.mark.parametrize("name", ORGANISMS)
def test_training_smoke_run_reproduces_the_recorded_losses(name):
    recorded = _record(name)["smoke"]
    assert recorded["config"]["steps"] <= 100 and recorded["config"]["threads"] == SMOKE.threads
    losses = train_model(SMOKE.__class__(**recorded["config"]))[3]
    assert losses[-1] == pytest.approx(recorded["losses"][-1], rel=1e-5)
    assert losses == pytest.approx(recorded["losses"], rel=1e-5)
