"""Flat head indices and (layer, head) pairs: the one conversion between them.

A ranking stores heads as flat indices ``layer * n_heads + head`` (layer-major), as numpy's
``ravel_multi_index`` on a (layer, head) grid does.

>>> split_heads([0, 5, 7], n_heads=4)
((0, 0), (1, 1), (1, 3))
>>> flat_heads(((1, 1), (1, 3)), n_heads=4)
(5, 7)
"""

from __future__ import annotations

from typing import Iterable

Heads = tuple[tuple[int, int], ...]


def split_heads(flat: Iterable[int], n_heads: int) -> Heads:
    """(layer, head) of each flat index ``layer * n_heads + head``."""
    return tuple(divmod(int(h), n_heads) for h in flat)


def flat_heads(heads: Iterable[tuple[int, int]], n_heads: int) -> tuple[int, ...]:
    """The flat index ``layer * n_heads + head`` of each (layer, head)."""
    return tuple(int(layer) * n_heads + int(head) for layer, head in heads)
