"""Gemma 3 (SigLIP + Gemma3 decoder): extra norms around each sublayer and an optional logit soft-cap."""

from __future__ import annotations

from typing import Any

import torch

from .base import Adapter, hf_module

GEMMA_CHAT = (
    "{{ bos_token }}{% for message in messages %}"
    "<start_of_turn>{% if message['role'] == 'assistant' %}model{% else %}{{ message['role'] }}{% endif %}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<start_of_image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


class Gemma3Adapter(Adapter):
    family = "gemma3"
    model_types = ("gemma3",)
    # Gemma3 normalises the attention output (post_attention_layernorm) before adding it to the
    # residual; the residual after attention is the input of the pre-MLP norm.
    mid_norm_name = "pre_feedforward_layernorm"
    attn_out_name = "post_attention_layernorm"
    # Gemma3ForConditionalGeneration (transformers 5) returns un-capped logits even when the text
    # config sets final_logit_softcapping (only Gemma3ForCausalLM caps); the lens mirrors the model.
    applies_final_softcap = False

    def processor_kwargs(self) -> dict[str, Any]:
        # token_type_ids mark image tokens, which attend bidirectionally among themselves.
        return {"return_token_type_ids": True}

    def head_contributions(self, root: Any, index: int, z: torch.Tensor) -> torch.Tensor:
        """Gemma3 normalises the attention output (RMSNorm with weight 1 + w) before adding it; with
        the normaliser's scale taken from the whole attention output the map is linear, so the
        heads' shares still sum exactly to the residual update."""
        heads = super().head_contributions(root, index, z)
        norm = getattr(self.layers(hf_module(root))[index], self.attn_out_name)
        total = heads.sum(-2, keepdim=True).float()
        scale = torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + norm.eps) * (1.0 + norm.weight.float())
        return (heads.float() * scale).to(heads.dtype)

    def batch_images(self, images: list[Any] | None) -> Any:
        # Gemma3's processor pairs a list of images with each prompt.
        return None if images is None else [[image] for image in images]

    @staticmethod
    def tiny(model_type: str = "gemma3", **sizes: int) -> tuple[Any, Any]:
        """Config and processor of a tiny Gemma 3: 28×28 image, patch 14 → 4 image tokens."""
        from transformers import Gemma3Config, Gemma3ImageProcessor, Gemma3Processor

        from ..tiny_tokenizer import fast_tokenizer

        special = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
        tokenizer = fast_tokenizer(
            ["<start_of_turn>", "<end_of_turn>"], chat_template=GEMMA_CHAT, bos="<bos>", eos="<eos>", pad="<pad>",
            extra_special=special,
        )
        ids = tokenizer.convert_tokens_to_ids
        config = Gemma3Config(
            text_config=dict(
                vocab_size=len(tokenizer), hidden_size=sizes.get("hidden_size", 64),
                intermediate_size=sizes.get("intermediate_size", 128),
                num_hidden_layers=sizes.get("num_hidden_layers", 3),
                num_attention_heads=sizes.get("num_attention_heads", 4),
                num_key_value_heads=sizes.get("num_key_value_heads", 2), head_dim=16, query_pre_attn_scalar=16,
                max_position_embeddings=512, sliding_window=512, final_logit_softcapping=30.0,  # ignored by the VLM
                bos_token_id=ids("<bos>"), eos_token_id=ids("<eos>"), pad_token_id=ids("<pad>"),
            ),
            vision_config=dict(
                model_type="siglip_vision_model", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, image_size=28, patch_size=14,
            ),
            mm_tokens_per_image=4,
            boi_token_index=ids("<start_of_image>"),
            eoi_token_index=ids("<end_of_image>"),
            image_token_index=ids("<image_soft_token>"),
        )
        processor = Gemma3Processor(
            image_processor=Gemma3ImageProcessor(size={"height": 28, "width": 28}),
            tokenizer=tokenizer,
            image_seq_length=4,
            chat_template=GEMMA_CHAT,
        )
        return config, processor
