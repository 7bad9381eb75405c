"""The logit lens (Eq 1) and per-head residual contributions (Eq 9), in pure torch.

``root`` is the nnsight model inside a trace (envoys) or the plain module (reference hooks); the
adapter resolves modules and weights on either, so the same code serves both.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.adapters import Adapter, hf_module


def lens_logits(adapter: Adapter, root: Any, residual: torch.Tensor, token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Final norm, then the unembedding restricted to ``token_ids`` (all if None), of ``residual``
    (..., hidden). Never materialises the full vocabulary when ids are given; applies the family's
    final logit soft-cap where the model's own forward does."""
    normed = adapter.final_norm(root)(residual)
    weight = adapter.unembed_weight(root)
    if token_ids is not None:
        weight = weight[token_ids]
    logits = normed @ weight.T.to(normed.dtype)
    bias = adapter.unembed_bias(root)
    if bias is not None:
        logits = logits + (bias if token_ids is None else bias[token_ids])
    if adapter.logit_softcap:
        logits = torch.tanh(logits / adapter.logit_softcap) * adapter.logit_softcap
    return logits


def head_contributions(adapter: Adapter, root: Any, index: int, z: torch.Tensor) -> torch.Tensor:
    """Each head's update to the residual stream, (..., heads, hidden), from the o_proj input ``z``
    (..., heads·head_dim) at the positions read (Eq 9). Summed over heads, plus the o_proj bias,
    this is the attention update. Where the family normalises the attention output before the
    residual add (Gemma 3), the norm's scale is taken from the whole attention output, so the map
    is linear and the heads' shares still sum exactly to the update."""
    shape = adapter.shape
    weight = adapter.out_proj_weight(root, index).unflatten(1, (shape.n_heads, shape.head_dim))
    heads = torch.einsum("...hd,ohd->...ho", z.unflatten(-1, (shape.n_heads, shape.head_dim)), weight.to(z.dtype))
    norm = adapter.attn_out_norm(hf_module(root), index)
    if norm is None:
        return heads
    total = heads.sum(-2, keepdim=True).float()
    scale = torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + norm.eps) * (adapter.norm_weight_offset + norm.weight.float())
    return (heads.float() * scale).to(heads.dtype)
