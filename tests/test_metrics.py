"""NSSD, LDAR, MFR and top-k readouts on hand-computed cases, with sign conventions."""

from __future__ import annotations

import math

import pytest
import torch

from anchors.readouts.metrics import (
    answer_from_text, compliant_probability, decide, ldar, margin, modality_following_ratio, nssd,
    synchronisation_rate, topk_readout,
)
from anchors.readouts import DictionaryError, Subspaces


@pytest.fixture
def space():
    # union ids [5, 7, 9]; sample 0: compliant {5}, competing {7}; 9 (another sample's) is outside
    return Subspaces(torch.tensor([5, 7, 9]), torch.tensor([[True, False, False]]), torch.tensor([[False, True, False]]))


def test_nssd_hand_computed(space):
    before = torch.tensor([[math.log(3.0), 0.0, 10.0]])  # P̂ = (0.75, 0.25); id 9 ignored
    after = torch.tensor([[0.0, 0.0, -3.0]])  # P̂ = (0.5, 0.5)
    expected = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert compliant_probability(before, space).item() == pytest.approx(0.75)
    value = nssd(before, after, space).item()
    assert value == pytest.approx(-expected, abs=1e-7)  # float32 inputs; compliant mass fell → negative
    assert nssd(after, before, space).item() > 0  # and the reverse is positive
    assert nssd(before, before, space).item() == 0.0


def test_nssd_ignores_logits_outside_the_subspace(space):
    before = torch.tensor([[1.0, 0.0, 0.0]])
    after = torch.tensor([[1.0, 0.0, 50.0]])
    assert nssd(before, after, space).item() == 0.0


def test_dictionaries_that_overlap_or_are_empty_are_refused():
    with pytest.raises(DictionaryError, match="sample s3: compliant and competing dictionaries share token ids \\[4\\]"):
        Subspaces.from_ids(["s3"], [[4, 5]], [[4]])
    with pytest.raises(DictionaryError, match="sample s4: field 'competing_ids' is empty"):
        Subspaces.from_ids(["s4"], [[4]], [[]])


def test_topk_readout_respects_validity_and_k():
    per_position = torch.tensor([[[1.0, 0.0], [3.0, 5.0], [2.0, 9.0]], [[4.0, 1.0], [0.0, 0.0], [0.0, 0.0]]])
    valid = torch.tensor([[True, True, True], [True, False, False]])
    out = topk_readout(per_position, valid, 2)
    assert out.tolist() == [[2.5, 7.0], [4.0, 1.0]]
    assert margin(out).tolist() == [-4.5, 3.0]


def test_decide_and_mfr():
    space = Subspaces.from_ids(["a", "b", "c"], [[5], [5], [5]], [[7], [7], [7]])
    answers = decide(torch.tensor([5, 7, 11]), space)
    assert answers == ["compliant", "competing", "other"]
    assert modality_following_ratio(answers) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        modality_following_ratio([])


def test_answer_from_text():
    assert answer_from_text("It is Crimson.", ["red", "crimson"], ["blue"]) == "compliant"
    assert answer_from_text("blue, not red", ["red"], ["blue"]) == "competing"
    assert answer_from_text("reddish", ["red"], ["blue"]) == "other"


def test_ldar_and_synchronisation():
    layer_margin = torch.tensor([[-1.0, 2.0], [1.0, 3.0], [-2.0, -1.0], [0.5, -0.5]])
    final = torch.tensor([1.0, 1.0, -1.0, 1.0])
    assert ldar(layer_margin, final).tolist() == [0.75, 0.75]
    generated = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    assert synchronisation_rate(layer_margin, generated).tolist() == [0.5, 0.75]


def test_subspace_score_max_and_mean_hand_computed():
    from anchors.readouts import subspace_logits

    # union ids [3, 4, 5, 6]; compliant {3, 4}, competing {5, 6}; logits per id over two layers
    membership = dict(compliant=torch.tensor([[True, True, False, False]]),
                      competing=torch.tensor([[False, False, True, True]]))
    logits = torch.tensor([[[1.0, 3.0, -2.0, 0.0], [4.0, 0.0, 1.0, 1.0]]])  # (B=1, L=2, U=4)
    by_max = subspace_logits(logits, Subspaces(torch.tensor([3, 4, 5, 6]), **membership))
    by_mean = subspace_logits(logits, Subspaces(torch.tensor([3, 4, 5, 6]), **membership, score="mean"))
    assert by_max.tolist() == [[[3.0, 0.0], [4.0, 1.0]]]
    assert by_mean.tolist() == [[[2.0, -1.0], [2.0, 1.0]]]
    assert Subspaces(torch.tensor([3]), membership["compliant"][:, :1], membership["competing"][:, :1],
                     score="mean").to(torch.device("cpu")).score == "mean"
    with pytest.raises(ValueError, match="subspace score 'median'"):
        Subspaces(torch.tensor([3]), membership["compliant"][:, :1], membership["competing"][:, :1], score="median")


def test_full_vocabulary_nssd_subspace_mass_and_kl_by_hand(space):
    from anchors.readouts.metrics import full_kl, nssd_full, subspace_mass

    # vocabulary of 4 ids; the union [5, 7, 9] sits at vocabulary positions 0, 1, 2
    before = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    after = torch.log(torch.tensor([[0.25, 0.25, 0.25, 0.25]]))
    kl = 0.5 * math.log(2) + 0.25 * math.log(1) + 0.125 * math.log(0.5) * 2
    assert full_kl(before, after).item() == pytest.approx(kl, abs=1e-6)
    assert subspace_mass(before[:, :3], space).item() == pytest.approx(0.75)  # compliant 5 + competing 7; 9 is not D
    value = nssd_full(before[:, :3], after[:, :3], full_kl(before, after), space).item()
    assert value == pytest.approx(-kl, abs=1e-6)  # compliant share 2/3 -> 1/2: negative


def test_answers_read_from_generated_text_and_degenerate_outputs():
    from anchors.readouts.metrics import answer_from_generation, is_degenerate

    assert is_degenerate("", [5, 6]) and is_degenerate("   ", [7]) and is_degenerate("the the the", [9, 9, 9])
    assert not is_degenerate("red", [9]) and not is_degenerate("red car", [9, 10])
    assert answer_from_generation("The answer is red.", [1, 2, 3], ["red"], ["blue"]) == "compliant"
    assert answer_from_generation("Blue, I think", [4, 5], ["red"], ["blue"]) == "competing"
    assert answer_from_generation("no idea", [6, 7], ["red"], ["blue"]) == "other"
    assert answer_from_generation("red", [8, 8, 8, 8], ["red"], ["blue"]) == "degenerate"  # one token repeated
    assert answer_from_generation("红色", [3, 4], ["red", "红色"], ["blue"]) == "compliant"
