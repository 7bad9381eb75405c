"""Knockout, head scaling and the logit-lens readouts of ``trace_batch`` checked against plain
PyTorch hooks and element-wise reference computations (not nnsight). Tolerance 1e-5."""

from __future__ import annotations

import pytest
import torch

from anchors.interventions import HeadScale, Knockout, from_json, to_json
from anchors.prompts.roles import expand_role
from anchors.prompts import ROLES
from anchors.tracer import encode_batch
from anchors.readouts import Subspaces, head_contributions
from anchors.tracer import trace_batch

from .helpers import prompts
from .reference import (
    head_scale_hooks, knockout_hooks, reference_subspace_logits, run_hooked,
)

TOL = 1e-5
COMPLIANT = list(range(10, 60))
COMPETING = list(range(60, 110))


def _setup(tiny, n):
    batch = encode_batch(tiny.adapter, prompts(n, tiny.adapter.multimodal, seed=7))
    space = Subspaces.from_ids(batch.sample_ids, [COMPLIANT] * n, [COMPETING] * n)
    roles = [[ROLES[c] for c in row] for row in batch.roles.tolist()]
    positions = [batch.positions(b, "instruction_semantic") + batch.positions(b, "instruction_format") for b in range(n)]
    positions = [sorted(p) for p in positions]
    return batch, space, roles, positions


def _hooked_readout(tiny, store, positions, n, site):
    key = {"pre": "resid_pre", "mid": "resid_mid", "post": "resid_post"}[site]
    return torch.stack(
        [reference_subspace_logits(tiny.adapter, tiny.module, store[(key, i)], positions, [COMPLIANT] * n, [COMPETING] * n)
         for i in range(tiny.adapter.shape.n_layers)], dim=1)


@pytest.mark.parametrize("n", [3, 1], ids=["padded", "unpadded"])
def test_knockout_matches_hook_reference(tiny, n):
    batch, space, roles, positions = _setup(tiny, n)
    spec = Knockout(("visual", "context"), "instruction", layer=1, window=3)
    layers = spec.layers(tiny.adapter.shape.n_layers)
    with knockout_hooks(tiny.module, tiny.adapter, layers, roles, set(expand_role(spec.source)), set(expand_role(spec.target))):
        store, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, [spec], lens=True)
    torch.testing.assert_close(got.answer_logits, logits[:, -1, space.union], atol=TOL, rtol=0)
    for s, site in enumerate(("pre", "mid", "post")):
        expected = _hooked_readout(tiny, store, positions, n, site)
        torch.testing.assert_close(torch.where(got.valid[:, None], got.readout[:, :, s, :, 0], 0.0),
                                   expected[..., 0], atol=TOL, rtol=0)
    baseline = trace_batch(tiny, batch, space)
    assert (baseline.answer_logits - got.answer_logits).abs().max() > 1e-4, "knockout had no effect"


def test_knockout_only_changes_layers_from_the_window_start(tiny):
    batch, space, _, _ = _setup(tiny, 3)
    base = trace_batch(tiny, batch, space, lens=True)
    cut = trace_batch(tiny, batch, space, [Knockout("cues", "instruction", layer=2, window=3)], lens=True)
    # window 3 around layer 2 starts at layer 1: layer 0 and layer 1's input are untouched
    assert torch.equal(base.readout[:, 0], cut.readout[:, 0])
    assert torch.equal(base.readout[:, 1, 0], cut.readout[:, 1, 0])
    assert (base.readout[:, 1, 1] - cut.readout[:, 1, 1]).abs().max() > 0


def test_head_scale_matches_hook_reference_and_formula(tiny):
    batch, space, _, positions = _setup(tiny, 3)
    layer, heads, alpha = 1, [0, 2], 3.0
    where = [(b, t) for b in range(3) for t in positions[b]]
    base_store, _ = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    with head_scale_hooks(tiny.module, tiny.adapter, layer, heads, alpha, where):
        store, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, [HeadScale(tuple((layer, h) for h in heads), alpha)], lens=True)
    torch.testing.assert_close(got.answer_logits, logits[:, -1, space.union], atol=TOL, rtol=0)
    # o_proj output = out + (alpha − 1) · Σ selected heads, at instruction positions only
    shape = tiny.adapter.shape
    z = base_store[("z", layer)].unflatten(-1, (shape.n_heads, shape.head_dim))
    w_o = tiny.adapter.out_proj_weight(tiny.module, layer).unflatten(1, (shape.n_heads, shape.head_dim))
    selected = torch.einsum("bthd,ohd->bto", z[:, :, heads], w_o[:, heads])
    at = torch.zeros(z.shape[:2], dtype=torch.bool)
    for b, t in where:
        at[b, t] = True
    expected = base_store[("o_proj_out", layer)] + (alpha - 1) * selected * at[..., None]
    torch.testing.assert_close(store[("o_proj_out", layer)], expected, atol=TOL, rtol=0)


def test_block_all_heads_equals_zero_attention_at_instruction(tiny):
    batch, space, _, _ = _setup(tiny, 2)
    shape = tiny.adapter.shape
    softmax = list(tiny.adapter.attention_layers(tiny.module))  # all layers but a hybrid's linear ones
    all_heads = tuple((l, h) for l in softmax for h in range(shape.n_heads))
    blocked = trace_batch(tiny, batch, space, [HeadScale(all_heads, 0.0)], lens=True, heads=True)
    # with every head zeroed at instruction positions the attention update there is zero (none of
    # the tiny models has an o_proj bias), so the residual after attention equals the layer input
    assert all(tiny.adapter.out_proj_bias(tiny.module, i) is None for i in softmax)
    readout = blocked.readout[:, softmax]
    torch.testing.assert_close(readout[:, :, 1], readout[:, :, 0], atol=TOL, rtol=0)
    # and each head's own readout equals the layer-input readout (its contribution is zero)
    head_readout = blocked.head_readout[:, softmax]
    torch.testing.assert_close(head_readout, readout[:, :, 0, :, None].expand_as(head_readout), atol=TOL, rtol=0)
    if len(softmax) < shape.n_layers:  # no heads to read at linear-attention layers
        others = [i for i in range(shape.n_layers) if i not in softmax]
        assert blocked.head_readout[:, others].isnan().all() and blocked.head_linear[:, others].isnan().all()


def test_lens_readout_equals_hooks_and_final_logits(tiny):
    batch, space, _, positions = _setup(tiny, 3)
    store, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, lens=True)
    for s, site in enumerate(("pre", "mid", "post")):
        expected = _hooked_readout(tiny, store, positions, 3, site)
        masked = torch.where(got.valid[:, None, :, None], got.readout[:, :, s], 0.0)
        torch.testing.assert_close(masked, expected, atol=TOL, rtol=0)
    # at the last layer, the lens at the answer position is the model's own output
    final = logits[:, -1]
    expected_final = torch.stack([final[:, COMPLIANT].amax(-1), final[:, COMPETING].amax(-1)], -1)
    torch.testing.assert_close(got.readout_generated[:, -1, 2], expected_final, atol=TOL, rtol=0)
    torch.testing.assert_close(got.answer_logits, final[:, space.union], atol=TOL, rtol=0)


def test_attention_and_mlp_deltas_add_up_along_the_residual(tiny):
    batch, space, _, positions = _setup(tiny, 3)
    store, _ = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, lens=True)
    readout = got.readout
    # the next layer's input is this layer's output
    torch.testing.assert_close(readout[:, 1:, 0], readout[:, :-1, 2], atol=0, rtol=0)
    attn = readout[:, :, 1] - readout[:, :, 0]
    mlp = readout[:, :, 2] - readout[:, :, 1]
    total = readout[:, -1, 2] - readout[:, 0, 0]
    torch.testing.assert_close((attn + mlp).sum(1), total, atol=TOL, rtol=0)
    # the attention delta is the lens of (layer input + attention update), from hooks
    for i in range(tiny.adapter.shape.n_layers):
        hidden = store[("resid_pre", i)] + store[("attn_out", i)]
        expected = reference_subspace_logits(tiny.adapter, tiny.module, hidden, positions, [COMPLIANT] * 3, [COMPETING] * 3)
        masked = torch.where(got.valid[..., None], readout[:, i, 1], 0.0)
        torch.testing.assert_close(masked, expected, atol=TOL, rtol=0)


def test_head_contributions_sum_to_attention_update_and_feed_head_readout(tiny):
    batch, space, _, positions = _setup(tiny, 3)
    store, _ = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, heads=True)
    for i in tiny.adapter.attention_layers(tiny.module):
        with torch.no_grad():
            contributions = head_contributions(tiny.adapter, tiny.module, i, store[("z", i)])
        total = contributions.sum(-2)
        bias = tiny.adapter.out_proj_bias(tiny.module, i)
        if bias is not None:
            total = total + bias
        torch.testing.assert_close(total, store[("attn_out", i)], atol=TOL, rtol=0)
        for h in range(tiny.adapter.shape.n_heads):
            hidden = store[("resid_pre", i)] + contributions[:, :, h]
            expected = reference_subspace_logits(tiny.adapter, tiny.module, hidden, positions, [COMPLIANT] * 3, [COMPETING] * 3)
            masked = torch.where(got.valid[..., None], got.head_readout[:, i, :, h], 0.0)
            torch.testing.assert_close(masked, expected, atol=TOL, rtol=0)


def test_specs_round_trip_through_json():
    items = [Knockout(("visual", "context"), "instruction", 4, 9), HeadScale(((3, 1), (5, 0)), 2.5, "instruction", "all")]
    assert from_json(to_json(items)) == items
    with pytest.raises(ValueError, match="unknown role 'vision'"):
        Knockout("vision", "instruction", 1)
    with pytest.raises(ValueError, match="knockout layer 7 outside"):
        Knockout("visual", "instruction", 7).layers(3)


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "llava", "gemma3", "llama"])
def test_per_head_readouts_are_built_in_chunks_no_larger_than_a_hidden_state(model_type):
    """The head-readout references above run through the chunked path on these families: their
    tiny prompts have more instruction positions than one chunk holds."""
    from anchors.models.tiny import tiny_model
    from anchors.tracer.trace import per_head_chunk

    tiny = tiny_model(model_type)
    batch, _, _, positions = _setup(tiny, 3)
    length, heads = batch.roles.shape[1], tiny.adapter.shape.n_heads
    assert per_head_chunk(length, heads) * heads <= length
    assert max(len(p) for p in positions) > per_head_chunk(length, heads)


@pytest.mark.parametrize("layer, window, expected", [
    (5, 1, [5]), (5, 2, [4, 5]), (5, 3, [4, 5, 6]), (5, 4, [3, 4, 5, 6]), (5, 9, list(range(1, 10))),
    (0, 4, [0, 1]), (11, 4, [9, 10, 11]),
])
def test_a_window_covers_exactly_its_size_in_layers_clipped_at_the_ends(layer, window, expected):
    assert list(Knockout("visual", "instruction", layer, window).layers(12)) == expected


def test_linear_head_attribution_sums_to_the_attention_term_and_matches_a_manual_projection(tiny):
    """Per head: the update through the final norm with its scale frozen at the layer input, on the
    union's unembedding rows, averaged over the instruction positions; computed by hand from the
    hooked residual stream (plain PyTorch) and summed over heads (tolerance 1e-5)."""
    from anchors.models.adapters import hf_module

    batch, space, _, positions = _setup(tiny, 3)
    store, _ = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, heads=True)
    softmax = list(tiny.adapter.attention_layers(tiny.module))  # a hybrid's linear layers have no heads
    torch.testing.assert_close(got.head_linear[:, softmax].sum(2), got.attn_linear[:, softmax], atol=TOL, rtol=0)
    norm = hf_module(tiny.adapter.final_norm(tiny.module))
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    # Gemma's and Qwen3.5's RMSNorms scale by 1 + w, Cohere's LayerNorm subtracts the mean (known
    # from their source, not from the adapter's measurement)
    text_type = tiny.module.config.get_text_config().model_type
    weight = (1.0 if text_type.startswith(("gemma", "qwen3_5")) else 0.0) + norm.weight.float()

    def centre(x):
        return x - x.mean(-1, keepdim=True) if text_type.startswith("cohere") else x

    unembed = tiny.adapter.unembed_weight(tiny.module)[space.union].float()
    for i in range(tiny.adapter.shape.n_layers):
        for b, rows in enumerate(positions):
            pre, mid = store[("resid_pre", i)][b, rows].float(), store[("resid_mid", i)][b, rows].float()
            scale = torch.rsqrt(centre(pre).pow(2).mean(-1, keepdim=True) + eps)
            expected = (centre(mid - pre) * scale * weight @ unembed.T).mean(0)
            torch.testing.assert_close(got.attn_linear[b, i], expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_masks_block_with_the_dtype_minimum(dtype):
    from anchors.interventions.edits import knockout_mask

    mask = torch.zeros(1, 1, 3, 3, dtype=dtype).masked_fill(torch.ones(3, 3, dtype=torch.bool).triu(1), torch.finfo(dtype).min)
    roles = torch.tensor([[1, 2, 3]])
    cut = knockout_mask(mask, roles, [([1], [3])], 3, dtype)
    assert cut[0, 0, 2, 0] == torch.finfo(dtype).min and torch.isfinite(cut).all()
    assert torch.equal(cut[0, 0, :2], mask[0, 0, :2]) and cut[0, 0, 2, 1:].eq(0).all()


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_knockout_in_bfloat16_matches_the_hook_reference(attn):
    """The whole path in bf16 (weights, masks, readouts) against hooks in bf16: same edges cut with
    the bf16 mask minimum; tolerance one bf16 step at these logit sizes (2e-2)."""
    from anchors.models import ModelSpec

    tiny = ModelSpec("tiny:qwen2_5_vl", attn_implementation=attn, dtype="bfloat16").load()
    batch, space, roles, positions = _setup(tiny, 3)
    spec = Knockout(("visual", "context"), "instruction", layer=0, window=3)
    with knockout_hooks(tiny.module, tiny.adapter, spec.layers(3), roles, set(expand_role(spec.source)),
                        set(expand_role(spec.target))):
        _, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    got = trace_batch(tiny, batch, space, [spec])
    assert next(tiny.module.parameters()).dtype == torch.bfloat16
    torch.testing.assert_close(got.answer_logits.float(), logits[:, -1, space.union].float(), atol=2e-2, rtol=0)
    assert (trace_batch(tiny, batch, space).answer_logits - got.answer_logits).abs().max() > 2e-2
