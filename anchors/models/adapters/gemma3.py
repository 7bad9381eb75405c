"""Gemma 3 (SigLIP + Gemma3 decoder): extra norms around each sublayer and an optional logit soft-cap."""

from __future__ import annotations

from typing import Any

from .base import Adapter


class Gemma3Adapter(Adapter):
    family = "gemma3"
    model_types = ("gemma3",)
    # Gemma3 normalises the attention output (post_attention_layernorm, RMSNorm with weight 1 + w)
    # before adding it to the residual; the residual after attention is the input of the pre-MLP norm.
    mid_norm_name = "pre_feedforward_layernorm"
    attn_out_name = "post_attention_layernorm"
    attn_out_norm_name = "post_attention_layernorm"
    norm_weight_offset = 1.0
    # Gemma3ForConditionalGeneration (transformers 5) returns un-capped logits even when the text
    # config sets final_logit_softcapping (only Gemma3ForCausalLM caps); the lens mirrors the model.
    applies_final_softcap = False

    def processor_kwargs(self) -> dict[str, Any]:
        # token_type_ids mark image tokens, which attend bidirectionally among themselves.
        return {"return_token_type_ids": True}

    def batch_images(self, images: list[Any] | None) -> Any:
        # Gemma3's processor pairs a list of images with each prompt.
        return None if images is None else [[image] for image in images]
