"""The decision subspace: each sample's compliant and competing answer dictionaries as first-token
ids, and the subspace logit (Eq 1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..errors import InputError
from ..prompts.prompt import SUBSPACE_SCORES


class DictionaryError(InputError):
    """Answer dictionaries that cannot define a decision subspace."""


@dataclass
class Subspaces:
    """The batch's two answer dictionaries as first-token ids: a union list plus membership."""

    union: torch.Tensor  # (U,) token ids
    compliant: torch.Tensor  # (B, U) bool
    competing: torch.Tensor  # (B, U) bool
    score: str = "max"  # one of SUBSPACE_SCORES: how subspace_logits pools a dictionary's logits

    def __post_init__(self) -> None:
        if self.score not in SUBSPACE_SCORES:
            raise InputError(f"subspace score {self.score!r} is not one of {', '.join(SUBSPACE_SCORES)}")

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
        return Subspaces(self.union.to(device), self.compliant.to(device), self.competing.to(device), self.score)


SUBSPACES: tuple[str, ...] = ("compliant", "competing")


def subspace_logits(logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Each dictionary's logit (Eq 1): the max over its ids, or with ``subspaces.score == "mean"``
    their mean (App. E.1). (B, ..., U) → (B, ..., 2) [compliant, competing]."""
    shape = (logits.shape[0],) + (1,) * (logits.dim() - 2) + (logits.shape[-1],)

    def pooled(member: torch.Tensor) -> torch.Tensor:
        member = member.view(shape)
        if subspaces.score == "mean":
            return (logits * member).sum(-1) / member.sum(-1)
        return logits.masked_fill(~member, torch.finfo(logits.dtype).min).amax(-1)

    return torch.stack([pooled(subspaces.compliant), pooled(subspaces.competing)], dim=-1)
