"""A prompt made of labelled segments, and a traced sample: the prompt with its answer dictionaries."""

from __future__ import annotations

import hashlib
import math
import json
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import InputError
from .roles import SEGMENT_ROLES

MODALITIES: tuple[str, ...] = ("text", "vision")
# how a dictionary's logits become one subspace logit: Eq 1's max, or their mean (App. E.1's ablation)
SUBSPACE_SCORES: tuple[str, ...] = ("max", "mean")


class PromptError(InputError):
    """A prompt cannot be rendered or one of its segments cannot be located.

    >>> issubclass(anchors.PromptError, anchors.InputError)
    True"""


@dataclass(frozen=True)
class Prompt:
    """One sample's prompt.

    ``segments`` are (role, text) pairs in user-message order, joined by ``separator``; a
    ``system`` segment there is an inline system-style passage (App. C.2 "between" variant).
    ``system_message`` goes into the chat template's system turn.

    >>> prompt = anchors.Prompt("p1", (("context", "The ball is red."), ("question", "What colour is the ball?"),
    ...                                 ("instruction_semantic", "Follow the text.")))
    >>> prompt.user_text
    'The ball is red. What colour is the ball? Follow the text.'
    >>> anchors.Prompt("p2", (("context", " "),))
    Traceback (most recent call last):
    anchors.prompts.prompt.PromptError: sample p2: segment 'context' is empty
    """

    sample_id: str
    segments: tuple[tuple[str, str], ...]
    image: Any | None = None
    system_message: str | None = None
    separator: str = " "
    #: the box ``(x0, y0, x1, y1)`` in the image's pixels that the question is about: the image's
    #: tokens whose rectangles overlap it get the role ``region``, the others ``off_region``
    region: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.region is not None:
            problem = box_problem(self.region)
            if problem or self.image is None:
                raise PromptError(f"sample {self.sample_id}: field 'region': {problem or 'needs an image'}")
        for role, text in self.segments:
            if role not in SEGMENT_ROLES:
                raise PromptError(f"sample {self.sample_id}: unknown segment role {role!r}; use one of {sorted(SEGMENT_ROLES)}")
            if not text or not text.strip():
                raise PromptError(f"sample {self.sample_id}: segment {role!r} is empty")
        if self.system_message is not None and not self.system_message.strip():
            raise PromptError(f"sample {self.sample_id}: segment 'system' (system_message) is empty")

    @property
    def user_text(self) -> str:
        return self.separator.join(text for _, text in self.segments)


def box_problem(box: Any, size: tuple[int, int] | None = None) -> str | None:
    """What is wrong with a region box ``[x0, y0, x1, y1]`` (pixels; inside an image of ``size``
    (height, width) when given), or None.

    >>> box_problem([10, 5, 4, 20])
    'x1 (4) must be greater than x0 (10)'"""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return f"must be [x0, y0, x1, y1] in pixels, got {box!r}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box):
        return f"must hold four numbers, got {list(box)!r}"
    x0, y0, x1, y1 = box
    for low, high, names in ((x0, x1, ("x0", "x1")), (y0, y1, ("y0", "y1"))):
        if high <= low:
            return f"{names[1]} ({high:g}) must be greater than {names[0]} ({low:g})"
    if min(x0, y0) < 0 or (size is not None and (x1 > size[1] or y1 > size[0])):
        where = f" of the {size[1]}×{size[0]} image" if size else ""
        return f"{list(box)!r} reaches outside the pixels{where}"
    return None


@dataclass(frozen=True)
class TracedSample:
    """What an analysis needs of one sample: the prompt, the first-token ids of its compliant and
    competing answer dictionaries, its task, ``instructed`` (the modality to follow) and ``style``
    (the instruction's wording: a style name, or the organism's held-in/held-out split).

    >>> samples[0].instructed, len(samples[0].compliant_ids) > 0
    ('text', True)"""

    prompt: Prompt
    compliant_ids: tuple[int, ...]
    competing_ids: tuple[int, ...]
    task: str = "unknown"
    instructed: str = "text"
    style: str = "default"
    compliant_forms: tuple[str, ...] = ()  # the dictionaries' surface forms, for answers read from
    competing_forms: tuple[str, ...] = ()  # generated text (``answer_from="generation"``)
    image_ref: str = ""  # where the image came from (a data folder's file), for showing the sample later
    variant: str = "default"  # the prompt variant (App. C.2's position controls), as the data folder names it

    def __post_init__(self) -> None:
        if self.instructed not in MODALITIES:
            raise InputError(f"sample {self.prompt.sample_id}: field 'instructed' must be one of {MODALITIES}, got {self.instructed!r}")

    @property
    def sample_id(self) -> str:
        return self.prompt.sample_id

    def key(self) -> list:
        """What identifies this sample's computation: its id and both dictionaries."""
        return [self.sample_id, list(self.compliant_ids), list(self.competing_ids)]


def dictionary_hash(samples: Iterable[TracedSample]) -> str:
    """A short hash of every sample's dictionary ids, to tell runs on different dictionaries apart."""
    digest = hashlib.sha256()
    for s in samples:
        digest.update(json.dumps(s.key()).encode())
    return digest.hexdigest()[:16]
