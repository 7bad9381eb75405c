"""A prompt together with its two answer dictionaries (as first-token ids) and labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from .adapters import Adapter
from .roles import EncodedBatch, Prompt, encode_batch
from .run import Subspaces

MODALITIES: tuple[str, ...] = ("text", "vision")


@dataclass(frozen=True)
class TracedSample:
    """What an experiment needs of one sample; ``instructed`` is the modality to follow."""

    prompt: Prompt
    compliant_ids: tuple[int, ...]
    competing_ids: tuple[int, ...]
    task: str = "unknown"
    instructed: str = "text"

    def __post_init__(self) -> None:
        if self.instructed not in MODALITIES:
            raise ValueError(f"sample {self.prompt.sample_id}: field 'instructed' must be one of {MODALITIES}, got {self.instructed!r}")

    @property
    def sample_id(self) -> str:
        return self.prompt.sample_id


def batches(
    adapter: Adapter, samples: Sequence[TracedSample], batch_size: int
) -> Iterator[tuple[int, Sequence[TracedSample], EncodedBatch, Subspaces]]:
    """Yield (start index, samples, encoded batch, subspaces) for consecutive padded batches."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"sample ids must be unique; repeated: {duplicated[:5]}")
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch = encode_batch(adapter, [s.prompt for s in chunk])
        space = Subspaces.from_ids(batch.sample_ids, [s.compliant_ids for s in chunk], [s.competing_ids for s in chunk])
        yield start, chunk, batch, space
