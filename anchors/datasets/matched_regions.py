"""Control data for region analyses: each sample's region box replaced by matched random boxes
(:meth:`~anchors.models.adapters.geometry.ImageGeometry.matched_boxes`: the same size, at random
places covering as many of its image tokens under one model's processor, not the same ones), so
that any region analysis (a ``region->instruction`` knockout, head scaling at ``region``) can be
run again on boxes that are not the object, and the two compared sample by sample."""

from __future__ import annotations

import dataclasses
import shutil
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..tracer.encode import encode_batch
from ..tracer.token_table import ENCODE_CHUNK
from .build import sample_prompt, save_samples
from .folder import DICTIONARIES_FILE, SAMPLES_FILE, DataFolder
from .instructions import ModalitySample

SEPARATOR = "@box"  # a control sample's id: the original id, then @boxK for its K-th matched box


def original_id(sample_id: str) -> str:
    """The sample a control sample was drawn for.

    >>> original_id("in3@box2"), original_id("in3")
    ('in3', 'in3')"""
    return sample_id.split(SEPARATOR)[0]


def sample_matched_boxes(geometry: Any, region: Any, n: int, seed: int, sample_id: str) -> np.ndarray:
    """Up to ``n`` matched boxes of one sample's ``region``
    (:meth:`~anchors.models.adapters.geometry.ImageGeometry.matched_boxes`), drawn by a generator
    seeded by ``seed`` and the sample's id: the same boxes whatever the batch, here and in
    ``image-attention``."""
    return geometry.matched_boxes(region, n, np.random.default_rng([seed, zlib.crc32(sample_id.encode())]))


def matched_region_samples(folder: DataFolder, adapter: Any, draws: int, seed: int = 0
                           ) -> tuple[list[ModalitySample], list[tuple[str, str]]]:
    """Up to ``draws`` control samples per sample of ``folder`` (ids ``ID@boxK``), each with a
    matched box as its region (:func:`sample_matched_boxes`); and
    (sample id, why) for each sample that gets none."""
    boxed = [s for s in folder.samples if s.region is not None]
    skipped = [(s.sample_id, "it has no region box") for s in folder.samples if s.region is None]
    out: list[ModalitySample] = []
    for start in range(0, len(boxed), ENCODE_CHUNK):
        chunk = boxed[start:start + ENCODE_CHUNK]
        batch = encode_batch(adapter, [sample_prompt(s) for s in chunk])
        for row, sample in enumerate(chunk):
            geometry = batch.image_geometry(row)
            boxes = sample_matched_boxes(geometry, sample.region, draws, seed, sample.sample_id)
            if not len(boxes):
                covered = int(geometry.overlapping(sample.region).sum())
                skipped.append((sample.sample_id, f"no other place for its box covers {covered} of its "
                                                  f"{len(geometry)} image tokens"))
            out += [dataclasses.replace(sample, sample_id=f"{sample.sample_id}{SEPARATOR}{k}",
                                        region=tuple(float(v) for v in box)) for k, box in enumerate(boxes)]
    return out, skipped


def write_matched_regions(data: str | Path, adapter: Any, out: str | Path, *, draws: int = 4, seed: int = 0,
                          log: Callable[[str], None] = lambda message: None) -> Path:
    """A data folder ``out`` of :func:`matched_region_samples` of the folder ``data`` (same images
    and dictionaries); each sample left out is logged with why."""
    folder, out = DataFolder.open(data), Path(out)
    samples, skipped = matched_region_samples(folder, adapter, draws, seed)
    for sample_id, why in skipped:
        log(f"sample {sample_id}: no matched boxes: {why}")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder.path / DICTIONARIES_FILE, out / DICTIONARIES_FILE)
    save_samples(out / SAMPLES_FILE, samples)
    return out
