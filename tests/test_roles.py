"""Token roles: located through the rendered chat template, right under padding and reordering."""

from __future__ import annotations

import pytest

from anchors.prompts import Prompt, PromptError
from anchors.tracer.encode import encode_batch, locate_segments
from anchors.models.tiny import tiny_model

from .helpers import image

SEM = "You should follow the textual context rather than the visual content."
FMT = "Answer the question with a single word."
CTX = "The ball in the picture is red."
QUE = "What color is the ball?"


def _text_of(tiny, batch, row: int, role: str) -> str:
    ids = batch.inputs["input_ids"][row, batch.positions(row, role)]
    return tiny.adapter.tokenizer.decode(ids, clean_up_tokenization_spaces=False).strip()


def _prompt(segments, system=None, sid="p"):
    return Prompt(sid, segments, image=image(0), system_message=system)


@pytest.mark.parametrize("model_type", ["qwen2_5_vl", "llava", "internvl", "gemma3"])
def test_roles_for_instruction_before_after_and_with_system_prompt(model_type):
    tiny = tiny_model(model_type)
    after = _prompt((("context", CTX), ("question", QUE), ("instruction_semantic", SEM), ("instruction_format", FMT)), sid="after")
    before = _prompt((("context", CTX), ("instruction_semantic", SEM), ("instruction_format", FMT), ("question", QUE)), sid="before")
    system = _prompt((("context", CTX), ("question", QUE), ("instruction_semantic", SEM), ("instruction_format", FMT)),
                     system="You are a helpful and honest assistant.", sid="system")
    inline = _prompt((("context", CTX), ("question", QUE), ("instruction_semantic", SEM),
                      ("system", "You are a helpful and honest assistant."), ("instruction_format", FMT)), sid="between")
    batch = encode_batch(tiny.adapter, [after, before, system, inline])
    for row in range(4):
        assert _text_of(tiny, batch, row, "context") == CTX
        assert _text_of(tiny, batch, row, "question") == QUE
        assert _text_of(tiny, batch, row, "instruction_semantic") == SEM
        assert _text_of(tiny, batch, row, "instruction_format") == FMT
        assert len(batch.positions(row, "visual")) == 4
        assert batch.positions(row, "generated") == [batch.roles.shape[1] - 1]
    # order follows the prompt: instruction after the question in row 0, before it in row 1
    assert batch.positions(0, "question")[-1] < batch.positions(0, "instruction_semantic")[0]
    assert batch.positions(1, "instruction_format")[-1] < batch.positions(1, "question")[0]
    assert _text_of(tiny, batch, 2, "system") == "You are a helpful and honest assistant."
    assert batch.positions(3, "instruction_semantic")[-1] < batch.positions(3, "system")[0] < batch.positions(3, "instruction_format")[0]
    assert not batch.positions(0, "system")
    # left padding: shorter rows start with pad positions and nothing else is pad
    for row in range(4):
        real = batch.inputs["attention_mask"][row].bool()
        assert not batch.mask("pad")[row][real].any()
        assert batch.mask("pad")[row][~real].all()


def test_segment_that_the_template_drops_is_named_in_the_error(monkeypatch):
    tiny = tiny_model("qwen2_5_vl")
    prompt = _prompt((("context", CTX), ("question", QUE), ("instruction_semantic", SEM)), sid="mc2-17")
    original = tiny.adapter.render
    monkeypatch.setattr(tiny.adapter, "render", lambda *a, **k: original(*a, **k).replace(SEM, ""))
    with pytest.raises(PromptError, match=r"sample mc2-17: segment 'instruction_semantic' .* cannot be located"):
        encode_batch(tiny.adapter, [prompt])


def test_segments_out_of_order_in_the_rendering_are_not_located():
    prompt = _prompt((("context", CTX), ("question", QUE)), sid="x1")
    rendered = f"<s>{QUE} {CTX}</s>"
    with pytest.raises(PromptError, match="sample x1: segment 'question'"):
        locate_segments(prompt, rendered)


def test_empty_or_unknown_segment_is_refused():
    with pytest.raises(PromptError, match="sample e1: segment 'question' is empty"):
        _prompt((("context", CTX), ("question", "  ")), sid="e1")
    with pytest.raises(PromptError, match="sample e2: unknown segment role 'answer'"):
        _prompt((("answer", "red"),), sid="e2")


def test_missing_image_is_named():
    tiny = tiny_model("llava")
    prompt = Prompt("noimg", (("question", QUE),))
    with pytest.raises(PromptError, match="sample noimg: field 'image' is missing"):
        encode_batch(tiny.adapter, [prompt])
