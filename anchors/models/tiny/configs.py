"""Configs and processors of tiny random-weight instances, one builder per family.

Every builder returns ``(config, processor)`` for a model small enough to build in a second; the
sizes are keyword arguments (``hidden_size``, ``num_hidden_layers``, ``vision_depth``, …) so the
organisms and benchmarks can scale them. Tokenizers are trained locally (no hub access).
"""

from __future__ import annotations

from typing import Any, Callable

from .llava import internvl, llava, llava_onevision, mistral3
from .others import aya_vision, deepseek_vl, gemma3, glm4v, idefics3, paligemma
from .qwen import qwen3, qwen_vl
from .shared import decoder_sizes
from .templates import CHATML_VL
from .tokenizer import fast_tokenizer


def text(model_type: str = "llama", **sizes: int) -> tuple[Any, Any]:
    """Config and tokenizer of a tiny text-only decoder."""
    from transformers import LlamaConfig, Qwen2Config

    tokenizer = fast_tokenizer(["<|im_start|>", "<|im_end|>"], chat_template=CHATML_VL, eos="<|im_end|>",
                               pad="<|endoftext|>")
    config_class = LlamaConfig if model_type == "llama" else Qwen2Config
    config = config_class(
        **decoder_sizes(tokenizer, sizes),
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"), tie_word_embeddings=False,
    )
    return config, tokenizer


# Keyed by model type: every verified type (adapters.VERIFIED) has a tiny instance.

BUILDERS: dict[str, Callable[..., tuple[Any, Any]]] = {
    "qwen2_5_vl": qwen_vl, "qwen2_vl": qwen_vl, "llava": llava, "llava_next": llava, "llava_onevision": llava_onevision, "internvl": internvl,
    "gemma3": gemma3, "paligemma": paligemma, "idefics3": idefics3,
    "smolvlm": idefics3, "glm4v": glm4v, "deepseek_vl": deepseek_vl,
    "aya_vision": aya_vision, "qwen3_5": qwen3, "qwen3_vl": qwen3,
    "mistral3": mistral3, "llama": text, "qwen2": text,
}
