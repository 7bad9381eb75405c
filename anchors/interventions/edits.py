"""Pure-torch edits applied inside a trace (so the same code can run on a remote server).

Role codes arrive as a (batch, seq) tensor; nothing here imports anything but torch.
"""

from __future__ import annotations

import torch


def role_mask(role_codes: torch.Tensor, codes: list[int]) -> torch.Tensor:
    """Boolean mask of positions whose role code is in ``codes``."""
    return torch.isin(role_codes, torch.tensor(codes, device=role_codes.device))


def extend_roles(role_codes: torch.Tensor, length: int, generated_code: int) -> torch.Tensor:
    """Role codes for ``length`` key positions: the prompt's, then ``generated`` for decode steps."""
    extra = length - role_codes.shape[1]
    if extra <= 0:
        return role_codes[:, :length]
    pad = torch.full((role_codes.shape[0], extra), generated_code, dtype=role_codes.dtype, device=role_codes.device)
    return torch.cat([role_codes, pad], dim=1)


def knockout_mask(
    mask: torch.Tensor | None,
    key_roles: torch.Tensor,
    blocks: list[tuple[list[int], list[int]]],
    query_length: int,
    dtype: torch.dtype,
) -> torch.Tensor:
    """A *new* attention mask with every (target query ← source key) edge of ``blocks`` removed.

    ``mask`` is what the layer received: an eager additive float mask (B,1,Q,K), an sdpa boolean
    mask (True = attend), or ``None`` (sdpa's causal no-padding fast path: a causal boolean mask is
    built first). The input mask is never modified: one mask object is shared by all layers.
    Blocked float entries get the dtype's minimum (not -inf, which can give NaN rows).
    """
    batch, keys = key_roles.shape
    query_roles = key_roles[:, keys - query_length :]
    cut = torch.zeros(batch, query_length, keys, dtype=torch.bool, device=key_roles.device)
    for source_codes, target_codes in blocks:
        source = role_mask(key_roles, source_codes)
        target = role_mask(query_roles, target_codes)
        cut |= target[:, :, None] & source[:, None, :]
    cut = cut[:, None]
    if mask is None:
        offset = keys - query_length
        q = torch.arange(query_length, device=key_roles.device)[:, None]
        k = torch.arange(keys, device=key_roles.device)[None, :]
        causal = (k <= q + offset)[None, None].expand(batch, 1, query_length, keys)
        return causal & ~cut
    if mask.dtype == torch.bool:
        return mask.expand(batch, -1, -1, -1) & ~cut
    return mask.expand(batch, -1, -1, -1).masked_fill(cut, torch.finfo(mask.dtype).min)


def cut_edges(
    mask: torch.Tensor | None, roles: torch.Tensor, edges: list[tuple[list[int], list[int]]], query_length: int,
    dtype: torch.dtype, decode_step: int = 0, generated_code: int = 0,
) -> torch.Tensor:
    """The attention mask a layer should receive with ``edges`` (source codes, target codes) cut:
    the prompt's role codes ``roles`` (B, T) are extended with ``generated_code`` for keys beyond
    the prompt (decode steps), then :func:`knockout_mask` edits a copy of ``mask`` (on the mask's
    device: with a model spread over GPUs, each layer's own)."""
    if mask is not None:
        roles = roles.to(mask.device)
    key_length = mask.shape[-1] if mask is not None else roles.shape[1] + decode_step
    return knockout_mask(mask, extend_roles(roles, key_length, generated_code), edges, query_length, dtype)


def scale_heads(
    z: torch.Tensor, heads: list[int], alpha: float, positions: torch.Tensor, head_dim: int
) -> torch.Tensor:
    """``z`` (B,T,H·d), the o_proj input, with the chosen heads multiplied by ``alpha`` where
    ``positions`` (B,T) is True. Returns a new tensor."""
    factor = torch.ones(z.shape[:-1] + (z.shape[-1] // head_dim,), dtype=z.dtype, device=z.device)
    selected = torch.zeros(factor.shape[-1], dtype=torch.bool, device=z.device)
    selected[heads] = True
    where = positions.to(z.device)[:, :, None] & selected[None, None, :]
    factor = torch.where(where, torch.as_tensor(alpha, dtype=z.dtype, device=z.device), factor)
    return z * factor.repeat_interleave(head_dim, dim=-1)
