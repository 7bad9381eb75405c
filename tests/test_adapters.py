"""Adapter contract, checked for every registered architecture under eager and sdpa attention
against plain PyTorch forward hooks (not nnsight)."""

from __future__ import annotations

import pytest
import torch

from anchors.models.adapters import ADAPTERS, AdapterError
from anchors.models.tiny import TINY_MODEL_TYPES
from anchors.models.loading import load_model
from anchors.readouts import lens_logits
from anchors.tracer import encode_batch

from .helpers import prompts
from .reference import run_hooked

TOL = 1e-5


@pytest.fixture
def hooked_run(tiny):
    batch = encode_batch(tiny.adapter, prompts(3, tiny.adapter.multimodal, seed=1, system=True))
    store, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    return tiny, batch, store, logits


def test_every_registered_model_type_has_a_tiny_instance():
    assert set(ADAPTERS) == set(TINY_MODEL_TYPES)


def test_mid_residual_is_layer_input_plus_attention_output(hooked_run):
    tiny, batch, store, _ = hooked_run
    for i in range(tiny.adapter.shape.n_layers):
        expected = store[("resid_pre", i)] + store[("attn_out", i)]
        torch.testing.assert_close(store[("resid_mid", i)], expected, atol=TOL, rtol=0)
        post = store[("resid_mid", i)] + store[("mlp_out", i)]
        if tiny.adapter.family != "gemma3":  # Gemma3 normalises the MLP output before adding it
            torch.testing.assert_close(store[("resid_post", i)], post, atol=TOL, rtol=0)


def test_heads_sum_to_o_proj_output(hooked_run):
    tiny, batch, store, _ = hooked_run
    shape = tiny.adapter.shape
    for i in range(shape.n_layers):
        z = store[("z", i)].unflatten(-1, (shape.n_heads, shape.head_dim))
        w_o = tiny.adapter.out_proj_weight(tiny.module, i).unflatten(1, (shape.n_heads, shape.head_dim))
        per_head = torch.einsum("bthd,ohd->btho", z, w_o)
        total = per_head.sum(2)
        bias = tiny.adapter.out_proj_bias(tiny.module, i)
        if bias is not None:
            total = total + bias
        torch.testing.assert_close(total, store[("o_proj_out", i)], atol=TOL, rtol=0)
        assert per_head.abs().amax() > 0


def test_lens_at_last_layer_equals_model_logits(hooked_run):
    tiny, batch, store, logits = hooked_run
    last = store[("resid_post", tiny.adapter.shape.n_layers - 1)]
    with torch.no_grad():
        lens = lens_logits(tiny.adapter, tiny.module, last)
        ids = torch.tensor([3, 7, 11])
        lens_subset = lens_logits(tiny.adapter, tiny.module, last, ids)
    torch.testing.assert_close(lens, logits, atol=TOL, rtol=0)
    torch.testing.assert_close(lens_subset, logits[..., ids], atol=TOL, rtol=0)


def test_visual_role_covers_exactly_the_image_tokens(hooked_run):
    tiny, batch, store, _ = hooked_run
    visual = batch.mask("visual")
    ids = batch.inputs["input_ids"]
    if not tiny.adapter.multimodal:
        assert not visual.any()
        return
    is_image_token = torch.isin(ids, torch.tensor(tiny.adapter.image_token_ids))
    assert torch.equal(visual, is_image_token)
    # The positions whose embedding the vision tower replaced are exactly the visual ones.
    with torch.no_grad():
        embedded = tiny.module.get_input_embeddings()(ids)
    replaced = (store[("resid_pre", 0)] - embedded).abs().amax(-1) > 0
    real = batch.inputs["attention_mask"].bool()
    assert torch.equal(replaced & real, visual)
    # 4 image tokens for a 56×56 image; LLaVA-NeXT's any-resolution tiling makes it 24: a 2×2 base
    # view, a 4×4 grid of tile features and a newline feature after each of the grid's 4 rows
    assert visual.sum(1).tolist() == [24 if tiny.adapter.config.model_type == "llava_next" else 4] * 3


def test_softcap_applied_where_the_model_applies_it():
    from anchors.models.adapters import TextAdapter
    from anchors.models.tiny import tiny_model

    # Gemma3's VLM forward ignores the text config's soft-cap, so the lens does too.
    assert tiny_model("gemma3").adapter.logit_softcap is None
    text = tiny_model("llama")
    config = text.module.config.__class__(**{**text.module.config.to_dict(), "final_logit_softcapping": 5.0})
    capped = TextAdapter(config, text.adapter.processor)
    residual = torch.randn(2, 3, text.adapter.shape.hidden_size)
    with torch.no_grad():
        plain = lens_logits(text.adapter, text.module, residual)
        soft = lens_logits(capped, text.module, residual)
    torch.testing.assert_close(soft, torch.tanh(plain / 5.0) * 5.0)
    assert soft.abs().max() <= 5.0


def test_flash_attention_is_refused_with_a_reason(tmp_path):
    with pytest.raises(AdapterError, match="flash attention gets a 2-D padding mask"):
        load_model(str(tmp_path), attn_implementation="flash_attention_2")


def test_unknown_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(AdapterError, match="no adapter for model_type 'gpt2'"):
        load_model(str(tmp_path))
