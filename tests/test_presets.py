"""Shipped presets (``--config paper``, ``--config organism``) and head counts given as percentages."""

from __future__ import annotations

import argparse

import pytest

from anchors.cli import build_parser
from anchors.command_options import apply_config, config_from
from anchors.experiments import HeadIntervention, LensProfile
from anchors.experiments.configs import InterventionConfig, KnockoutConfig, heads_arg
from anchors.experiments.base import head_count
from anchors.models.tiny import tiny_model
from anchors.presets import PRESETS, command_options
from anchors.runner import run

from .helpers import prompts


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    apply_config(parser, argv)
    return parser.parse_args(argv)


def test_head_counts_as_percentages_round_half_up():
    assert [head_count(k, 784) for k in ("1%", "2%", "5%", 40)] == [8, 16, 39, 40]  # Qwen2.5-VL-7B: 28 x 28
    assert head_count("1%", 12) == 1  # at least one
    assert heads_arg("5%") == "5%" and heads_arg("8") == 8
    with pytest.raises(argparse.ArgumentTypeError, match="neither a number of heads"):
        heads_arg("five")


def test_the_paper_preset_reaches_the_analyses_and_flags_still_win():
    assert set(PRESETS) >= {"paper", "organism"}
    common = ["--model", "tiny:qwen2_5_vl", "--data", "d", "--out", "x.nc", "--config", "paper"]
    intervene = _parse(["intervene", *common, "--lens", "l.nc"])
    config = config_from(intervene, InterventionConfig)
    assert config.ks == ("1%", "2%", "3%", "4%", "5%") and config.shared_top == "5%" and max(config.alphas) == 20.0
    assert config_from(_parse(["knockout", *common]), KnockoutConfig).windows == (9,)
    assert config_from(_parse(["knockout", *common, "--windows", "3"]), KnockoutConfig).windows == (3,)
    assert command_options("organism", "knockout")["windows"] == (3, 1, 5)


def test_percentages_resolve_against_the_models_heads_and_are_recorded():
    loaded = tiny_model("qwen2_5_vl", "sdpa")  # 3 layers x 4 heads = 12 heads
    from anchors.prompts import TracedSample

    samples = [TracedSample(p, (11,), (12,), task="color", instructed=("text", "vision")[i % 2])
               for i, p in enumerate(prompts(4, True, seed=2))]
    lens = run(LensProfile(top_k=2), loaded, samples, batch_size=4)
    analysis = HeadIntervention(lens, ks=("25%", "50%", 2), shared_top="50%", alpha_k="25%")
    resolved = analysis.resolve(loaded.adapter).as_config()
    assert (resolved["ks"], resolved["shared_top"], resolved["alpha_k"]) == ([2, 3, 6], 6, 3)
    assert resolved["as_given"] == {"ks": ("25%", "50%", 2), "alpha_k": "25%", "shared_top": "50%"}
