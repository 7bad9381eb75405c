"""Attention probabilities as eager attention computes them, from the rotated queries and keys a
layer hands its attention function (the same for eager and sdpa: sdpa never forms them). Pure
torch, so it also runs on a remote server."""

from __future__ import annotations

import torch


def attention_probabilities(query: torch.Tensor, key: torch.Tensor, mask: torch.Tensor | None, scaling: float,
                            softcap: float | None = None) -> torch.Tensor:
    """softmax(q·kᵀ·scaling (+ soft-cap) + mask) over keys: (B, heads, queries, keys) from ``query``
    (B, heads, Q, d) and ``key`` (B, kv_heads, K, d), each key/value head shared by
    ``heads / kv_heads`` consecutive query heads (GQA, as transformers' ``repeat_kv``). ``mask`` is
    what the layer's attention function received: additive float (eager), boolean with True = attend
    (sdpa), or None (causal, no padding)."""
    key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap:
        scores = torch.tanh(scores / softcap) * softcap
    queries, keys = scores.shape[-2:]
    if mask is None:
        mask = torch.ones(queries, keys, dtype=torch.bool, device=scores.device).tril(keys - queries)
    if mask.dtype == torch.bool:
        scores = scores.masked_fill(~mask[..., :keys], torch.finfo(scores.dtype).min)
    else:
        scores = scores + mask[..., :keys]
    return torch.softmax(scores.float(), dim=-1).to(query.dtype)
