"""Consecutive padded batches of traced samples, each with its decision subspaces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from ..errors import InputError
from ..models.adapters import Adapter
from ..prompts.prompt import TracedSample
from ..readouts.subspaces import Subspaces
from .encode import EncodedBatch, encode_batch


@dataclass
class Batch:
    """One padded batch: where it starts in the sample list, its samples, encoding and subspaces."""

    start: int
    samples: Sequence[TracedSample]
    encoded: EncodedBatch
    subspaces: Subspaces


def check_unique(samples: Sequence[TracedSample]) -> None:
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(f"sample ids must be unique; repeated: {duplicated[:5]}")


def encode_samples(adapter: Adapter, samples: Sequence[TracedSample]) -> tuple[EncodedBatch, Subspaces]:
    """One padded batch of ``samples`` and its subspaces."""
    encoded = encode_batch(adapter, [s.prompt for s in samples])
    space = Subspaces.from_ids(encoded.sample_ids, [s.compliant_ids for s in samples], [s.competing_ids for s in samples])
    return encoded, space


def batches(adapter: Adapter, samples: Sequence[TracedSample], batch_size: int) -> Iterator[Batch]:
    """Consecutive padded batches of ``batch_size`` samples (ids must be unique)."""
    if batch_size < 1:
        raise InputError(f"batch_size must be ≥ 1, got {batch_size}")
    check_unique(samples)
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        yield Batch(start, chunk, *encode_samples(adapter, chunk))
