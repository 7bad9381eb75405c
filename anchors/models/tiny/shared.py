"""What every tiny builder shares: the decoder sizes and Qwen's rotary split."""

from __future__ import annotations

from typing import Any


def decoder_sizes(tokenizer: Any, sizes: dict[str, Any]) -> dict[str, Any]:
    """The decoder sizes every tiny text config shares (``sizes`` overrides the defaults)."""
    return dict(vocab_size=len(tokenizer), hidden_size=sizes.get("hidden_size", 64),
                intermediate_size=sizes.get("intermediate_size", 128), num_hidden_layers=sizes.get("num_hidden_layers", 3),
                num_attention_heads=sizes.get("num_attention_heads", 4),
                num_key_value_heads=sizes.get("num_key_value_heads", 2), max_position_embeddings=512)


def mrope_section(head_dim: int) -> list[int]:
    """Split head_dim/2 rotary frequencies over (t, h, w) as Qwen does (≈ 1/4, 3/8, 3/8)."""
    half = head_dim // 2
    t = half // 4
    h = (half - t) // 2
    return [t, h, half - t - h]
