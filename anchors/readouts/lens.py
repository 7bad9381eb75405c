"""The logit lens (Eq 1) and per-head residual contributions (Eq 9), in pure torch.

``root`` is the nnsight model inside a trace (envoys) or the plain module (reference hooks); the
adapter resolves modules and weights on either, so the same code serves both. On a remote model
(norms measured through calls, :attr:`~anchors.models.adapters.Norms.weightless`) no weight is read:
a sandboxed request sees only a weightless copy of the model, so the unembedding, the output
projection and the attention-output norm are *called* on what they must map (:func:`_linear_part`).
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
    if adapter.norms(root).weightless:
        logits = adapter.unembed(root)(normed)
        logits = logits if token_ids is None else logits[..., token_ids.to(logits.device)]
        return _logit_cap(adapter, logits)
    weight = adapter.unembed_weight(root)
    if token_ids is not None:
        weight = weight[token_ids.to(weight.device)]
    logits = normed @ weight.T.to(normed.device, normed.dtype)
    bias = adapter.unembed_bias(root)
    if bias is not None:
        logits = logits + (bias if token_ids is None else bias[token_ids.to(bias.device)]).to(logits.device)
    return _logit_cap(adapter, logits)


def _logit_cap(adapter: Adapter, logits: torch.Tensor) -> torch.Tensor:
    """The family's logit scale and soft-cap, where the model's own forward applies them."""
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
    weightless = adapter.norms(root).weightless
    z_heads = z.unflatten(-1, (shape.n_heads, shape.head_dim))
    if weightless:  # head h's input alone, the others zeroed: (..., heads, heads·head_dim)
        alone = torch.eye(shape.n_heads, device=z.device, dtype=z.dtype)[:, :, None] * z_heads[..., None, :, :]
        heads = _linear_part(adapter.out_proj(root, index), alone.flatten(-2))
    else:
        weight = adapter.out_proj_weight(root, index).unflatten(1, (shape.n_heads, shape.head_dim))
        heads = torch.einsum("...hd,ohd->...ho", z_heads, weight.to(z.dtype))
    norm = adapter.attn_out_norm(hf_module(root), index)
    if norm is None:
        return heads
    form, eps = adapter.norms(root).attn_out, norm_eps(norm)
    frozen = form.scale(heads.sum(-2, keepdim=True), eps)
    if weightless:  # c(h)·(offset + w) = norm(h) / scale(h), by calling this layer's norm
        return (adapter.attn_out_norm(root, index)(heads).float() / form.scale(heads, eps) * frozen).to(heads.dtype)
    return (form.centre(heads.float()) * frozen * form.multiplier(norm, heads)).to(heads.dtype)


def frozen_norm_logits(adapter: Adapter, root: Any, residual: torch.Tensor, update: torch.Tensor,
                       token_ids: torch.Tensor) -> torch.Tensor:
    """The linear share of ``update`` (..., hidden) in the lens logits of ``residual + update`` on
    ``token_ids``, with the final norm's scale frozen at ``residual`` (..., hidden; broadcast against
    the update): ``(w ⊙ c(update) / rms(c(residual))) · W_U[ids]`` (``c`` centres for a LayerNorm,
    ``w`` is ``1 + w`` for Gemma; times the model's logit scale if it has one), before any soft-cap.
    Linear in the update, so per-head shares sum exactly to the whole update's (Eq 9's linear
    counterpart)."""
    norm = hf_module(adapter.final_norm(root))
    norms = adapter.norms(root)
    form = norms.final
    normed = form.centre(update.float()) * form.scale(residual, norm_eps(norm)) * form.multiplier(norm, update)
    if norms.weightless:
        head = adapter.unembed(root)
        logits = _linear_part(head, normed.to(update.dtype)).float()[..., token_ids.to(update.device)]
    else:
        unembed = adapter.unembed_weight(root)
        logits = normed @ unembed[token_ids.to(unembed.device)].to(normed.device).float().T
    return logits * (adapter.logit_scale or 1.0)


def _linear_part(linear: Any, x: torch.Tensor) -> torch.Tensor:
    """``x`` (..., rows, in) times a linear module's weight, without its bias, by calling the module
    (weights unread): on ``x`` and one zero row, whose output (the bias, or zero) is subtracted."""
    out = linear(torch.cat([x, torch.zeros_like(x[..., :1, :])], -2))
    return out[..., :-1, :] - out[..., -1:, :]
