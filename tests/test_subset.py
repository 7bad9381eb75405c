"""Stratified data fractions (App. C.3): counts per stratum, reproducible by seed, recorded in attrs."""

from __future__ import annotations

import pytest

from anchors.datasets.subset import Subset
from anchors.errors import InputError
from anchors.experiments import LensProfile
from anchors.organism.task import write_data
from anchors.runner import run_folder

# stratum sizes 10, 5, 3, 1 (interleaved, as MC2 files are not)
ITEMS = [(f"i{n}", stratum) for n, stratum in enumerate(["a"] * 10 + ["b"] * 5 + ["c"] * 3 + ["d"])]


def _counts(items):
    return {s: sum(1 for _, t in items if t == s) for s in "abcd"}


def test_half_of_every_stratum_rounded_half_up_at_least_one():
    chosen = Subset(fraction=0.5, seed=1).take(ITEMS, lambda item: item[1])
    assert _counts(chosen) == {"a": 5, "b": 3, "c": 2, "d": 1}  # 2.5 -> 3, 1.5 -> 2, 0.5 -> 1
    assert chosen == sorted(chosen, key=ITEMS.index)  # original order kept
    assert _counts(Subset(fraction=0.1).take(ITEMS, lambda item: item[1])) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert Subset(fraction=1.0).take(ITEMS, lambda item: item[1]) == ITEMS


def test_same_seed_same_draw_other_seed_other_draw():
    def draw(seed):
        return Subset(fraction=0.5, seed=seed).take(ITEMS, lambda item: item[1])

    assert draw(3) == draw(3)
    assert any(draw(3) != draw(seed) for seed in range(4, 10))


def test_limit_applies_after_the_fraction_and_both_are_recorded():
    subset = Subset(limit=4, fraction=0.5, seed=2)
    assert len(subset.take(ITEMS, lambda item: item[1])) == 4
    assert subset.attrs() == {"fraction": 0.5, "fraction_seed": 2, "limit": 4}
    assert Subset().attrs() == {}
    with pytest.raises(InputError, match="fraction must be in"):
        Subset(fraction=1.5)


def test_a_run_on_a_fraction_of_a_data_folder_records_it(tmp_path):
    data = write_data(tmp_path / "data", 8)  # 8 records -> 16 samples, text and vision
    result = run_folder(LensProfile(heads=False), "organism", data, fraction=0.25, seed=5, batch_size=16)
    assert (result.attrs["fraction"], result.attrs["fraction_seed"]) == (0.25, 5)
    per_stratum = result.sample.groupby(result.task + "/" + result.instructed).count()
    assert per_stratum.values.tolist() == [2] * len(per_stratum)  # 8 per stratum x 0.25
