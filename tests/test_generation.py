"""Interventions during greedy generation, checked against Hugging Face ``generate`` with plain
hooks: knockouts with generated-token targets act at every step; head scaling at the prefill
only or at every step."""

from __future__ import annotations

import pytest
import torch

from anchors.interventions import HeadScale, Knockout
from anchors.prompts.roles import expand_role
from anchors.prompts import ROLES
from anchors.tracer import encode_batch
from anchors.readouts import Subspaces
from anchors.tracer import generate_batch
from anchors.models.tiny import tiny_model

from .helpers import prompts
from .reference import head_scale_hooks, knockout_hooks

TOL = 1e-5
STEPS = 3
UNION = list(range(0, 200))


def _reference(tiny, batch):
    with torch.no_grad():
        out = tiny.module.generate(**batch.inputs, max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False,
                                   output_logits=True, return_dict_in_generate=True)
    prompt_length = batch.inputs["input_ids"].shape[1]
    return out.sequences[:, prompt_length:], torch.stack(out.logits, 1)[..., UNION]


def _setup(model_type, attn, n):
    tiny = tiny_model(model_type, attn)
    batch = encode_batch(tiny.adapter, prompts(n, tiny.adapter.multimodal, seed=4))
    space = Subspaces.from_ids(batch.sample_ids, [UNION[:100]] * n, [UNION[100:]] * n)
    return tiny, batch, space


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "llava", "llama"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("n", [1, 3])
def test_knockout_to_generated_tokens_in_every_step(model_type, attn, n):
    tiny, batch, space = _setup(model_type, attn, n)
    spec = Knockout("instruction", "generated", layer=1, window=3)
    roles = [[ROLES[c] for c in row] for row in batch.roles.tolist()]
    with knockout_hooks(tiny.module, tiny.adapter, spec.layers(tiny.adapter.shape.n_layers), roles,
                        set(expand_role(spec.source)), set(expand_role(spec.target))):
        tokens, logits = _reference(tiny, batch)
    got = generate_batch(tiny, batch, space, [spec], max_new_tokens=STEPS)
    assert torch.equal(got.tokens, tokens)
    torch.testing.assert_close(got.step_logits, logits, atol=TOL, rtol=0)
    plain = generate_batch(tiny, batch, space, max_new_tokens=STEPS)
    assert (plain.step_logits[:, 1:] - got.step_logits[:, 1:]).abs().max() > 1e-4, "decode steps were not cut"


@pytest.mark.parametrize("steps", ["prefill", "all"])
def test_head_scale_prefill_only_or_every_step(steps):
    tiny, batch, space = _setup("qwen2_5_vl", "eager", 2)
    layer, heads, alpha = 1, [1, 3], 4.0
    where = [(b, t) for b in range(2) for t in batch.positions(b, "instruction_semantic") + batch.positions(b, "generated")]
    spec = HeadScale(tuple((layer, h) for h in heads), alpha, role=("instruction_semantic", "generated"), steps=steps)
    with head_scale_hooks(tiny.module, tiny.adapter, layer, heads, alpha, where,
                          decode_alpha=alpha if steps == "all" else None):
        tokens, logits = _reference(tiny, batch)
    got = generate_batch(tiny, batch, space, [spec], max_new_tokens=STEPS)
    assert torch.equal(got.tokens, tokens)
    torch.testing.assert_close(got.step_logits, logits, atol=TOL, rtol=0)


def test_generation_without_interventions_equals_huggingface():
    tiny, batch, space = _setup("gemma3", "sdpa", 3)
    tokens, logits = _reference(tiny, batch)
    got = generate_batch(tiny, batch, space, max_new_tokens=STEPS)
    assert torch.equal(got.tokens, tokens)
    torch.testing.assert_close(got.step_logits, logits, atol=TOL, rtol=0)
