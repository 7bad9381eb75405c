"""The in-trace code survives nnsight's remote serialisation round trip (``remote="local"``:
serialised as for an NDIF server, user modules hidden, run here) with identical results."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from anchors.interventions import HeadScale, Knockout
from anchors.tracer import encode_batch
from anchors.readouts import Subspaces
from anchors.tracer import generate_batch, trace_batch
from anchors.models.tiny import tiny_model

from .helpers import prompts

SPEC = [Knockout("cues", "instruction", 1, 1), HeadScale(((2, 1), (0, 0)), 0.0)]


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "gemma3"])
def test_trace_batch_remote_local_equals_local(model_type):
    tiny = tiny_model(model_type)
    batch = encode_batch(tiny.adapter, prompts(2, True, seed=5))
    space = Subspaces.from_ids(batch.sample_ids, [[10, 11, 12]] * 2, [[20, 21]] * 2)
    local = trace_batch(tiny, batch, space, SPEC, lens=True, heads=True)
    remote = trace_batch(tiny, batch, space, SPEC, lens=True, heads=True, remote="local")
    for field in dataclasses.fields(local):
        mine, theirs = getattr(local, field.name), getattr(remote, field.name)
        if field.name in ("full_kl", "log_probs"):  # only with reference_log_probs / keep_log_probs
            assert mine is None and theirs is None
            continue
        assert mine is not None and torch.equal(mine, theirs), field.name
    clean = trace_batch(tiny, batch, space, keep_log_probs=True)
    local = trace_batch(tiny, batch, space, SPEC, reference_log_probs=clean.log_probs)
    remote = trace_batch(tiny, batch, space, SPEC, reference_log_probs=clean.log_probs, remote="local")
    assert torch.equal(local.full_kl, remote.full_kl) and (local.full_kl > 0).all()


def test_generate_batch_remote_local_equals_local():
    tiny = tiny_model("llava")
    batch = encode_batch(tiny.adapter, prompts(2, True, seed=6))
    space = Subspaces.from_ids(batch.sample_ids, [[10, 11]] * 2, [[20, 21]] * 2)
    spec = [Knockout("instruction", "generated", 1, 1)]
    local = generate_batch(tiny, batch, space, spec, max_new_tokens=2)
    remote = generate_batch(tiny, batch, space, spec, max_new_tokens=2, remote="local")
    assert torch.equal(local.tokens, remote.tokens)
    assert torch.equal(local.step_logits, remote.step_logits)


def test_naive_knockout_sweep_of_a_remote_model_is_one_request_with_identical_results():
    """On a remote model the clean trace and every knockout's run inside one ``model.session``;
    the clean log-probabilities stay on the server."""
    from anchors.tracer.sweep import sweep_knockouts

    tiny = tiny_model("qwen2_5_vl", "sdpa")
    batch = encode_batch(tiny.adapter, prompts(3, True))
    space = Subspaces.from_ids(batch.sample_ids, [[1]] * 3, [[2]] * 3)
    knockouts = [Knockout("context", "instruction", 0, 1), Knockout("visual", "generated", 1, 3)]
    local = sweep_knockouts(tiny, batch, space, knockouts, method="naive")
    remote = sweep_knockouts(dataclasses.replace(tiny, remote="local"), batch, space, knockouts, method="naive")
    for name in ("logits", "top_token", "subspace_mass", "full_kl", "exact"):
        assert torch.equal(getattr(local, name), getattr(remote, name)), name
    assert (remote.full_kl > 0).all() and remote.clean.log_probs is None


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "gemma3", "aya_vision"])
def test_weightless_readouts_equal_the_weight_reading_ones(model_type):
    """A sandboxed request sees a weightless copy of the model: a remote model's norms are measured
    by calling them (RMS, Gemma's 1 + w, Cohere's centred LayerNorm), and the lens, per-head and
    frozen-norm readouts call the unembedding, output projection and attention-output norm instead
    of reading weights. Both routes agree within 1e-5, and the gains equal ``offset + w``."""
    import copy

    from anchors.models.adapters import hf_module
    from anchors.models.remote import measure_norms

    tiny = tiny_model(model_type)
    adapter = copy.copy(tiny.adapter)
    measure_norms(tiny.model, adapter, "local")
    norms, exact = adapter.norms(tiny.model), tiny.adapter.norms(tiny.model)
    assert norms.weightless and not exact.weightless and norms.final.centred == exact.final.centred
    final = hf_module(adapter.final_norm(tiny.model))
    torch.testing.assert_close(norms.final.gain, exact.final.offset + final.weight.float(), rtol=0, atol=1e-6)
    batch = encode_batch(tiny.adapter, prompts(2, True, seed=5))
    space = Subspaces.from_ids(batch.sample_ids, [[10, 11, 12]] * 2, [[20, 21]] * 2)
    local = trace_batch(tiny, batch, space, SPEC, lens=True, heads=True)
    weightless = trace_batch(dataclasses.replace(tiny, adapter=adapter), batch, space, SPEC, lens=True, heads=True,
                             remote="local")
    for field in ("answer_logits", "readout", "readout_generated", "head_readout", "head_linear", "attn_linear"):
        torch.testing.assert_close(getattr(weightless, field), getattr(local, field), rtol=0, atol=1e-5, msg=field)
