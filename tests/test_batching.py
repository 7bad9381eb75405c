"""A left-padded batch must give the same per-sample numbers as one run per sample."""

from __future__ import annotations

import torch

from anchors.tracer import encode_batch

from .helpers import prompts

TOL = 1e-5


def _trace_logits(tiny, batch) -> torch.Tensor:
    with torch.no_grad(), tiny.model.trace(batch.inputs):
        logits = tiny.model.output.logits.save()
    return logits


def test_padded_batch_of_8_equals_single_runs(tiny):
    samples = prompts(8, tiny.adapter.multimodal, seed=3)
    batch = encode_batch(tiny.adapter, samples)
    lengths = batch.inputs["attention_mask"].sum(1)
    assert len(set(lengths.tolist())) > 1, "the batch must mix prompt lengths"
    batched = _trace_logits(tiny, batch)
    for row, sample in enumerate(samples):
        single_batch = encode_batch(tiny.adapter, [sample])
        single = _trace_logits(tiny, single_batch)[0]
        n = int(lengths[row])
        torch.testing.assert_close(batched[row, -n:], single, atol=TOL, rtol=0)
        assert torch.equal(batch.roles[row, -n:], single_batch.roles[0])
