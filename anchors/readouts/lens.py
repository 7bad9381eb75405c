"""The logit lens (Eq 1) and per-head residual contributions (Eq 9), in pure torch.

``root`` is the nnsight model inside a trace (envoys) or the plain module (reference hooks); the
adapter resolves modules and weights on either, so the same code serves both.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.adapters import Adapter, hf_module, norm_eps


def lens_logits(adapter: Adapter, root: Any, residual: torch.Tensor, token_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Final norm, then the unembedding restricted to ``token_ids`` (all if None), of ``residual``
    (..., hidden). Never materialises the full vocabulary when ids are given; applies the family's
    final logit soft-cap where the model's own forward does."""
    normed = adapter.final_norm(root)(residual)
    weight = adapter.unembed_weight(root)
    if token_ids is not None:
        weight = weight[token_ids.to(weight.device)]
    logits = normed @ weight.T.to(normed.device, normed.dtype)
    bias = adapter.unembed_bias(root)
    if bias is not None:
        logits = logits + (bias if token_ids is None else bias[token_ids.to(bias.device)]).to(logits.device)
    if adapter.logit_scale:
        logits = logits * adapter.logit_scale
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
    form = adapter.norms(root).attn_out
    scale = form.scale(heads.sum(-2, keepdim=True), norm_eps(norm)) * (form.offset + norm.weight.float())
    return (form.centre(heads.float()) * scale).to(heads.dtype)


def frozen_norm_logits(adapter: Adapter, root: Any, residual: torch.Tensor, update: torch.Tensor,
                       token_ids: torch.Tensor) -> torch.Tensor:
    """The linear share of ``update`` (..., hidden) in the lens logits of ``residual + update`` on
    ``token_ids``, with the final norm's scale frozen at ``residual`` (..., hidden; broadcast against
    the update): ``(w ⊙ c(update) / rms(c(residual))) · W_U[ids]`` (``c`` centres for a LayerNorm,
    ``w`` is ``1 + w`` for Gemma; times the model's logit scale if it has one), before any soft-cap.
    Linear in the update, so per-head shares sum exactly to the whole update's (Eq 9's linear
    counterpart)."""
    norm = hf_module(adapter.final_norm(root))
    form = adapter.norms(root).final
    normed = form.centre(update.float()) * form.scale(residual, norm_eps(norm)) * (form.offset + norm.weight.float())
    unembed = adapter.unembed_weight(root)
    return normed @ unembed[token_ids.to(unembed.device)].to(normed.device).float().T * (adapter.logit_scale or 1.0)
