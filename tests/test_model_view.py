"""The public trace API (:class:`anchors.ModelView`) in a user's own nnsight trace, against plain
PyTorch hooks on every verified family's tiny instance, eager and sdpa (1e-5). Each experiment is
written as a user would write it: the view's primitives and plain nnsight, no helper."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import anchors
from anchors.errors import InputError
from anchors.models.tiny import tiny_model
from anchors.prompts import Prompt
from anchors.readouts import lens_logits
from anchors.tracer import ModelView

from .helpers import image, prompts
from .reference import first, head_scale_hooks, knockout_hooks, run_hooked

TOL = 1e-5


def _roles(batch) -> list[list[str]]:
    return [[anchors.ROLES[c] for c in row] for row in batch.roles.tolist()]


def _mean_at(hidden: torch.Tensor, batch, role: str) -> torch.Tensor:
    """Reference: a plain loop over each row's positions of ``role``."""
    return torch.stack([hidden[b, batch.positions(b, role)].mean(0) for b in range(hidden.shape[0])])


@pytest.fixture
def view(tiny) -> ModelView:
    return anchors.view(tiny)


def test_knockout_then_lens_at_the_instruction_equals_hooks(view, tiny):
    """Cut image+context -> instruction in the first layers, read the lens at the instruction."""
    batch = view.encode(prompts(3, tiny.adapter.multimodal, seed=7))
    layers, read_at = view.attention_layers[:2], view.attention_layers[1]
    with torch.no_grad(), view.trace(batch):
        for layer in layers:
            view.knockout(batch, layer, source="cues", target="instruction")
        lens = view.lens(view.mean(view.read("resid_post", read_at), batch, "instruction")).save()
    with knockout_hooks(tiny.module, tiny.adapter, layers, _roles(batch), {"visual", "context"},
                        {"instruction_semantic", "instruction_format"}):
        store, _ = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    expected = lens_logits(tiny.adapter, tiny.module, _mean_at(store[("resid_post", read_at)], batch, "instruction"))
    torch.testing.assert_close(lens, expected, atol=TOL, rtol=0)


def test_zeroing_a_head_at_the_instruction_equals_hooks(view, tiny):
    batch = view.encode(prompts(3, tiny.adapter.multimodal, seed=8))
    layer = view.attention_layers[-1]
    with torch.no_grad(), view.trace(batch):
        view.scale_heads(batch, layer, heads=[1], alpha=0.0, role="instruction")
        logits = view.model.output.logits[:, -1].save()
    positions = [(b, t) for b in range(3) for t in batch.positions(b, "instruction")]
    with head_scale_hooks(tiny.module, tiny.adapter, layer, [1], 0.0, positions):
        _, expected = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    torch.testing.assert_close(logits, expected[:, -1], atol=TOL, rtol=0)


def test_head_contributions_sum_to_the_attention_update(view, tiny):
    """Eq 9's per-head shares at the instruction positions, summed (plus any o_proj bias), are the
    attention update the hooks record there."""
    batch = view.encode(prompts(2, tiny.adapter.multimodal, seed=9))
    layer = view.attention_layers[-1]
    with torch.no_grad(), view.trace(batch):
        shares = view.heads(layer, view.take(view.read("z", layer), batch, "instruction")).save()
    store, _ = run_hooked(tiny.module, tiny.adapter, batch.inputs)
    bias = tiny.adapter.out_proj_bias(tiny.module, layer) if tiny.adapter.attn_out_norm(tiny.module, layer) is None else None
    got = shares.sum(-2) + (bias if bias is not None else 0)
    torch.testing.assert_close(got, view.take(store[("attn_out", layer)], batch, "instruction"), atol=TOL, rtol=0)
    assert shares.shape[-2:] == (view.n_heads, tiny.adapter.shape.hidden_size)


def _same_instruction(multimodal: bool) -> tuple[list[Prompt], list[Prompt]]:
    """Two batches whose rows share the instruction wording but not the context length (so the
    batches are left-padded differently)."""
    base = prompts(2, multimodal, seed=11)
    other = [dataclasses.replace(p, sample_id=f"o{i}", image=image(50 + i) if multimodal else None,
                                 segments=(("context", "The ball is blue" + " and big" * (3 * i + 1) + "."), *p.segments[1:]))
             for i, p in enumerate(base)]
    return base, other


def test_residual_patching_by_role_inside_generate_equals_hooks(view, tiny):
    """Patch layer L's residual at the instruction tokens from one prompt into another, aligned by
    role, in the prefill of a greedy generation over a left-padded batch."""
    source_prompts, target_prompts = _same_instruction(tiny.adapter.multimodal)
    source, target = view.encode(source_prompts), view.encode(target_prompts)
    layer = view.n_layers // 2
    with torch.no_grad(), view.trace(source):
        donor = view.take(view.read("resid_post", layer), source, "instruction").save()
    with torch.no_grad(), view.generate(target, max_new_tokens=3) as tracer:
        view.write("resid_post", layer, view.put(view.read("resid_post", layer), target, "instruction", donor, source))
        tokens = tracer.result.save()
    rows = [(b, target.positions(b, "instruction"), source.positions(b, "instruction")) for b in range(2)]
    with torch.no_grad():
        clean, _ = run_hooked(tiny.module, tiny.adapter, source.inputs)

        def patch(module, args, output):
            hidden = first(output)
            if hidden.shape[1] == 1:  # a decode step: the prefill alone is patched
                return None
            hidden = hidden.clone()
            for b, mine, theirs in rows:
                hidden[b, mine] = clean[("resid_post", layer)][b, theirs]
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        handle = tiny.adapter.layer(tiny.module, layer).register_forward_hook(patch)
        try:
            expected = tiny.module.generate(**target.inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
        finally:
            handle.remove()
    assert torch.equal(tokens, expected)


ONE = (pytest.mark.parametrize("model_type", ["qwen2_5_vl"]), pytest.mark.parametrize("attn", ["sdpa"]))


@ONE[0]
@ONE[1]
def test_patching_refuses_rows_whose_role_counts_differ(view):
    short = [Prompt("a", (("question", "Which colour?"), ("instruction_semantic", "Follow the text."))), ]
    long = [Prompt("b", (("question", "Which colour?"), ("instruction_semantic", "Follow the text closely now.")))]
    a, b = (view.encode([dataclasses.replace(p, image=image(1) if view.adapter.multimodal else None) for p in x])
            for x in (short, long))
    with pytest.raises(InputError, match="sample a: .* positions of role 'instruction', but .* in source sample b"):
        view.put(torch.zeros(1, a.roles.shape[1], 4), a, "instruction", torch.zeros(1, 9, 4), b)


def test_attention_probabilities_equal_eager_output_attentions(view, tiny):
    """Recomputed from the rotated queries and keys, under eager and under sdpa alike, after a
    knockout at the same layer (the mask the layer used), against the eager model's own weights."""
    batch = view.encode(prompts(2, tiny.adapter.multimodal, seed=12))
    layer = view.attention_layers[-1]
    source = "visual" if tiny.adapter.multimodal else "context"
    with torch.no_grad(), view.trace(batch):
        view.knockout(batch, layer, source=source, target="instruction")
        probs = view.attention(layer).save()
    eager = tiny_model(tiny.adapter.model_type, "eager")
    with torch.no_grad(), knockout_hooks(eager.module, eager.adapter, [layer], _roles(batch), {source},
                                         {"instruction_semantic", "instruction_format"}):
        every = eager.module(**batch.inputs, output_attentions=True).attentions
    # a hybrid decoder returns the softmax layers' only
    expected = every[layer] if len(every) == view.n_layers else every[view.attention_layers.index(layer)]
    torch.testing.assert_close(probs, expected, atol=TOL, rtol=0)


@ONE[0]
@ONE[1]
def test_the_same_user_trace_runs_under_remote_local(view, tiny):
    """nnsight's in-process simulation of a remote round trip: the same code, the same values."""
    batch = view.encode(prompts(2, True, seed=13))
    remote = ModelView(dataclasses.replace(tiny, remote="local"))
    values = []
    for v in (view, remote):
        with torch.no_grad(), v.trace(batch):
            v.knockout(batch, 0, source="visual", target="instruction")
            probs = v.attention(1).save()  # inside layer 1's attention: before its output projection
            v.scale_heads(batch, 1, heads=[0], alpha=2.0, role="instruction")
            values.append((v.lens(v.mean(v.read("resid_post", 1), batch, "instruction")).save(), probs))
    for remote_value, local_value in zip(values[1], values[0]):
        torch.testing.assert_close(remote_value, local_value, atol=TOL, rtol=0)


@pytest.mark.parametrize("model", ["organism", "tiny:llava", "folder"])
def test_load_model_and_model_spec_take_the_same_strings(model):
    from anchors.models.tiny import tiny_folder

    text = str(tiny_folder("qwen2_5_vl")) if model == "folder" else model
    a, b = anchors.load_model(text), anchors.ModelSpec(text).load()
    assert a.provenance == b.provenance and a.adapter.family == b.adapter.family
    for x, y in zip(a.module.state_dict().values(), b.module.state_dict().values()):
        assert torch.equal(x, y)
    assert anchors.view(text).tokenizer is not None and anchors.view(a).processor is a.adapter.processor


def test_help_and_dir_list_the_public_names():
    import pydoc

    text = pydoc.render_doc(anchors, renderer=pydoc.plaintext)
    for name in ("ModelView", "view", "load_model", "LensProfile", "run"):
        assert name in dir(anchors) and name in text, name
    assert set(anchors.__all__) <= set(dir(anchors))


@ONE[0]
@ONE[1]
def test_batch_masks_accept_groups(view, tiny):
    batch = view.encode(prompts(2, tiny.adapter.multimodal, seed=3))
    both = batch.mask("instruction_semantic") | batch.mask("instruction_format")
    assert torch.equal(batch.mask("instruction"), both) and both.any()
    assert batch.positions(0, "instruction") == torch.nonzero(both[0]).flatten().tolist()
