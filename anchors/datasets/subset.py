"""Which samples of a data folder a run uses: the first N (``--limit``, for quick runs) or a random
fraction drawn within every stratum of task × instructed modality (App. C.3's data-scale
sensitivity), reproducible by seed and recorded in the result's attrs."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence, TypeVar

from ..errors import InputError

Item = TypeVar("Item")


@dataclass(frozen=True)
class Subset:
    """``fraction`` (0 < F ≤ 1) keeps round-half-up(F · n) of each stratum's n samples, at least one,
    drawn with ``seed``, in their original order; ``limit`` then keeps the first N."""

    limit: int | None = None
    fraction: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise InputError(f"limit must be a positive integer, got {self.limit}")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise InputError(f"fraction must be in (0, 1], got {self.fraction}")

    def take(self, items: Sequence[Item], stratum: Callable[[Item], Hashable]) -> list[Item]:
        chosen = list(items)
        if self.fraction is not None:
            groups: dict[Hashable, list[int]] = {}
            for index, item in enumerate(chosen):
                groups.setdefault(stratum(item), []).append(index)
            rng = random.Random(self.seed)
            keep: set[int] = set()
            for key in sorted(groups, key=repr):
                members = groups[key]
                keep.update(rng.sample(members, max(1, math.floor(self.fraction * len(members) + 0.5))))
            chosen = [item for index, item in enumerate(chosen) if index in keep]
        return chosen[: self.limit]

    def attrs(self) -> dict[str, Any]:
        """What a result records about the subset (nothing for the whole data set)."""
        out: dict[str, Any] = {}
        if self.fraction is not None:
            out.update(fraction=self.fraction, fraction_seed=self.seed)
        if self.limit is not None:
            out["limit"] = self.limit
        return out
