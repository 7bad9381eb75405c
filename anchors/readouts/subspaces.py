"""The decision subspace: each sample's compliant and competing answer dictionaries as first-token
ids, and the subspace logit (Eq 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import InputError


class DictionaryError(InputError):
    """Answer dictionaries that cannot define a decision subspace."""


@dataclass
class Subspaces:
    """The batch's two answer dictionaries as first-token ids: a union list plus membership."""

    union: torch.Tensor  # (U,) token ids
    compliant: torch.Tensor  # (B, U) bool
    competing: torch.Tensor  # (B, U) bool

    @classmethod
    def from_ids(cls, sample_ids: Sequence[str], compliant: Sequence[Sequence[int]], competing: Sequence[Sequence[int]]) -> "Subspaces":
        for sid, c, k in zip(sample_ids, compliant, competing):
            if not c or not k:
                which = "compliant" if not c else "competing"
                raise DictionaryError(f"sample {sid}: field '{which}_ids' is empty (no dictionary token)")
            shared = set(c) & set(k)
            if shared:
                raise DictionaryError(f"sample {sid}: compliant and competing dictionaries share token ids {sorted(shared)}")
        union = sorted({i for ids in list(compliant) + list(competing) for i in ids})
        index = {token: n for n, token in enumerate(union)}

        def membership(lists: Sequence[Sequence[int]]) -> torch.Tensor:
            out = torch.zeros(len(lists), len(union), dtype=torch.bool)
            for row, ids in enumerate(lists):
                out[row, [index[i] for i in ids]] = True
            return out

        return cls(torch.tensor(union, dtype=torch.long), membership(compliant), membership(competing))

    def to(self, device: torch.device) -> "Subspaces":
        return Subspaces(self.union.to(device), self.compliant.to(device), self.competing.to(device))


SUBSPACES: tuple[str, ...] = ("compliant", "competing")


def subspace_logits(logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Max logit over each dictionary (Eq 1): (B, ..., U) → (B, ..., 2) [compliant, competing]."""
    shape = (logits.shape[0],) + (1,) * (logits.dim() - 2) + (logits.shape[-1],)
    low = torch.finfo(logits.dtype).min
    compliant = logits.masked_fill(~subspaces.compliant.view(shape), low).amax(-1)
    competing = logits.masked_fill(~subspaces.competing.view(shape), low).amax(-1)
    return torch.stack([compliant, competing], dim=-1)
