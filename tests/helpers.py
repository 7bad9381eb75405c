"""Synthetic prompts for tests: varied lengths, segment orders and images."""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from anchors.prompts import Prompt

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "brown"]
FILLER = "the ball on the left near a big table".split()


def image(seed: int, size: int = 56) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((size, size, 3)) * 255).astype("uint8"))


def prompts(n: int, multimodal: bool, seed: int = 0, system: bool = False) -> list[Prompt]:
    """``n`` prompts of different lengths (context padded with 0–8 filler words)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        colour = rng.choice(COLOURS)
        context = "The ball is " + colour + " " + " ".join(rng.sample(FILLER, rng.randint(0, 8))) + "."
        segments = (
            ("context", context),
            ("question", "What color is the ball?"),
            ("instruction_semantic", "You should follow the textual context rather than the visual content."),
            ("instruction_format", "Answer the question with a single word."),
        )
        out.append(
            Prompt(
                sample_id=f"s{i}",
                segments=segments,
                image=image(seed * 1000 + i) if multimodal else None,
                system_message="You are a helpful assistant." if system else None,
            )
        )
    return out
