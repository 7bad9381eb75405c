"""Adapter contract, checked for every registered architecture under eager and sdpa attention
against plain PyTorch forward hooks (not nnsight)."""

from __future__ import annotations

import pytest
import torch

from anchors.models.adapters import VERIFIED, AdapterError
from anchors.models.tiny import TINY_MODEL_TYPES
from anchors.models import load_model
from anchors.readouts import lens_logits
from anchors.tracer import encode_batch

from .helpers import prompts
from .reference import run_hooked

TOL = 1e-5
# Image positions of one 56×56 test image where the family does not make it 4: any-resolution
# tiling gives a 2×2 base view, a 4×4 grid of tile features and a newline feature per grid row;
# Idefics3's splitting gives 2×2 tiles and a global view of 4 tokens each.
IMAGE_POSITIONS = {"llava_next": 24, "llava_onevision": 24, "idefics3": 20, "smolvlm": 20}


@pytest.fixture
def hooked_run(tiny):
    batch = encode_batch(tiny.adapter, prompts(3, tiny.adapter.multimodal, seed=1, system=True))
    store, logits = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    return tiny, batch, store, logits


def test_every_verified_model_type_has_a_tiny_instance():
    assert set(VERIFIED) == set(TINY_MODEL_TYPES)


def test_mid_residual_is_layer_input_plus_attention_output(hooked_run):
    tiny, batch, store, _ = hooked_run
    for i in range(tiny.adapter.shape.n_layers):
        expected = store[("resid_pre", i)] + store[("attn_out", i)]
        torch.testing.assert_close(store[("resid_mid", i)], expected, atol=TOL, rtol=0)
        post = store[("resid_mid", i)] + store[("mlp_out", i)]
        layer = tiny.adapter.layer(tiny.module, i)
        if not any(hasattr(layer, n) for n in ("post_feedforward_layernorm", "post_mlp_layernorm")):
            # Gemma and GLM normalise the MLP output before adding it
            torch.testing.assert_close(store[("resid_post", i)], post, atol=TOL, rtol=0)


def test_heads_sum_to_o_proj_output(hooked_run):
    tiny, batch, store, _ = hooked_run
    shape = tiny.adapter.shape
    for i in tiny.adapter.attention_layers(tiny.module):
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
    assert visual.sum(1).tolist() == [IMAGE_POSITIONS.get(tiny.adapter.model_type, 4)] * 3


def test_softcap_applied_where_the_model_applies_it():
    """Gemma3's VLM forward ignores the text config's soft-cap, Gemma3ForCausalLM applies it: the
    lens follows each model's own forward (checked against its logits)."""
    from transformers import Gemma3ForCausalLM

    from anchors.models.adapters import Adapter
    from anchors.models.tiny import tiny_model

    vlm = tiny_model("gemma3")
    assert vlm.adapter.logit_softcap is None
    torch.manual_seed(0)
    lm = Gemma3ForCausalLM(vlm.module.config.text_config).eval()
    adapter = Adapter(lm.config, vlm.adapter.tokenizer)
    adapter.bind(lm)
    assert adapter.logit_softcap == 30.0
    store, logits = run_hooked(lm, adapter, {"input_ids": torch.randint(0, 50, (2, 6))})
    with torch.no_grad():
        lens = lens_logits(adapter, lm, store[("resid_post", adapter.shape.n_layers - 1)])
    assert logits.abs().max() <= 30.0
    torch.testing.assert_close(lens, logits, atol=TOL, rtol=0)


def test_flash_attention_is_refused_with_a_reason(tmp_path):
    with pytest.raises(AdapterError, match="flash attention gets a 2-D padding mask"):
        load_model(str(tmp_path), attn_implementation="flash_attention_2")


def _folder_with(tmp_path, config) -> str:
    from anchors.models.tiny.templates import CHATML_VL
    from anchors.models.tiny.tokenizer import fast_tokenizer

    config.save_pretrained(tmp_path)
    fast_tokenizer([], chat_template=CHATML_VL, eos="</s>", pad="<pad>").save_pretrained(tmp_path)
    return str(tmp_path)


def test_architecture_that_does_not_fit_is_refused_before_weights_load(tmp_path):
    """GPT-2 keeps its blocks at transformer.h: the error names the accessor and what was found,
    from the config alone (no weights file exists in the folder)."""
    from transformers import GPT2Config

    folder = _folder_with(tmp_path, GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, bos_token_id=None, eos_token_id=None))
    with pytest.raises(AdapterError, match=r"decoder layers: none of .* module lists found: transformer\.h \(2\)"):
        load_model(folder)


def test_attention_without_a_linear_output_projection_is_refused_naming_it():
    from anchors.models.adapters.structure import derive_paths

    class Attention(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c_proj = torch.nn.Linear(4, 4)

    class Layer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn, self.mlp, self.post_attention_layernorm = Attention(), torch.nn.Linear(4, 4), torch.nn.RMSNorm(4)

    model = torch.nn.Module()
    model.model = torch.nn.Module()
    model.model.layers = torch.nn.ModuleList([Layer(), Layer()])
    with pytest.raises(AdapterError, match=r"attention output projection: model\.layers\.0\.self_attn \(Attention\) "
                                           r"has no Linear among o_proj, .*; it has c_proj"):
        derive_paths(model, 2)


def test_norm_with_a_bias_is_refused():
    from anchors.models.adapters.structure import norm_form

    norm = torch.nn.LayerNorm(8)
    torch.nn.init.normal_(norm.bias)
    with pytest.raises(AdapterError, match="LayerNorm is neither an RMS norm .* nor a bias-free LayerNorm"):
        norm_form(norm)
    assert norm_form(torch.nn.LayerNorm(8, bias=False)).centred
    assert not norm_form(torch.nn.RMSNorm(8, eps=1e-6)).centred


def test_norm_forms_are_measured_per_family():
    from anchors.models.tiny import tiny_model

    gemma, llama, aya = (tiny_model(t).adapter for t in ("gemma3", "llama", "aya_vision"))
    assert (gemma.norms(None).final.offset, gemma.norms(None).attn_out.offset) == (1.0, 1.0)
    assert (llama.norms(None).final.offset, llama.norms(None).attn_out) == (0.0, None)
    assert aya.norms(None).final.centred and aya.paths(None).mid_norm is None


def test_cross_attention_vlm_is_refused_with_the_reason():
    from anchors.models.adapters import adapter_class

    with pytest.raises(AdapterError, match="mllama.*cross-attention"):
        adapter_class("mllama")


def test_families_without_quirks_use_the_structural_adapter_alone():
    from anchors.models.adapters import QUIRKS, Adapter
    from anchors.models.tiny import tiny_model

    plain = [t for t in VERIFIED if t not in QUIRKS]
    assert len(plain) >= 4
    for model_type in plain:
        assert type(tiny_model(model_type).adapter) is Adapter, model_type


def test_survey_sorts_model_types_by_whether_the_structural_adapter_fits():
    """Default configs on meta-device skeletons (no weights): one row per outcome kind."""
    from anchors.models.survey import survey

    rows = {row["model_type"]: row for row in survey(["qwen3_5", "qwen3_vl_moe", "blip", "mllama", "cohere2_vision"])}
    assert rows["qwen3_5"]["outcome"] == "verified" and "hybrid: 8 of 32 layers have softmax attention" in rows["qwen3_5"]["detail"]
    assert rows["qwen3_vl_moe"]["outcome"] == "fits (unverified)" and rows["qwen3_vl_moe"]["adapter"] == "structural"
    assert rows["blip"]["outcome"] == "does not fit" and "decoder layers: none of" in rows["blip"]["detail"]
    assert rows["mllama"]["outcome"] == "refused"
    assert "parallel attention/MLP blocks" in rows["cohere2_vision"]["detail"]
