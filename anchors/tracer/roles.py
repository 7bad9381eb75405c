"""Prompts made of labelled segments, and the role of every token of a padded batch.

A prompt's user message is a sequence of segments (context, question, instruction parts, …).
Each segment is located by character offsets in the chat-template rendering; tokens inherit
the role of the segment holding their first non-space character (a whitespace-only token: the
segment that wholly contains it). The processor then expands
image placeholders (and may add tokens around them); a token-level alignment between the
rendered prompt's tokens and the processor's ids carries the roles over, so the map is right
for any image-token count and under left padding.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from .adapters import Adapter

ROLES: tuple[str, ...] = (
    "pad",
    "template",
    "system",
    "visual",
    "context",
    "question",
    "instruction_semantic",
    "instruction_format",
    "generated",
)
ROLE_CODE: dict[str, int] = {role: code for code, role in enumerate(ROLES)}
SEGMENT_ROLES: frozenset[str] = frozenset({"system", "context", "question", "instruction_semantic", "instruction_format"})


class PromptError(ValueError):
    """A prompt cannot be rendered or one of its segments cannot be located."""


@dataclass(frozen=True)
class Prompt:
    """One sample's prompt.

    ``segments`` are (role, text) pairs in user-message order, joined by ``separator``; a
    ``system`` segment there is an inline system-style passage (App. C.2 "between" variant).
    ``system_message`` goes into the chat template's system turn.
    """

    sample_id: str
    segments: tuple[tuple[str, str], ...]
    image: Any | None = None
    system_message: str | None = None
    separator: str = " "

    def __post_init__(self) -> None:
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


@dataclass
class EncodedBatch:
    """A left-padded processor batch and the role code of every position."""

    inputs: Any
    roles: torch.Tensor
    sample_ids: list[str]

    def mask(self, role: str) -> torch.Tensor:
        """Boolean (batch, seq) mask of the positions holding ``role``."""
        return self.roles == ROLE_CODE[role]

    def positions(self, index: int, role: str) -> list[int]:
        return torch.nonzero(self.roles[index] == ROLE_CODE[role]).flatten().tolist()

    @property
    def size(self) -> int:
        return len(self.sample_ids)


def locate_segments(prompt: Prompt, rendered: str) -> list[tuple[str, int, int]]:
    """Character spans (role, start, end) of each segment in the rendered chat template, in order."""
    wanted: list[tuple[str, str]] = []
    if prompt.system_message:
        wanted.append(("system", prompt.system_message))
    wanted.extend(prompt.segments)
    spans: list[tuple[str, int, int]] = []
    cursor = 0
    for role, text in wanted:
        start = rendered.find(text, cursor)
        if start < 0:
            raise PromptError(
                f"sample {prompt.sample_id}: segment {role!r} ({text[:50]!r}) cannot be located in the rendered "
                "prompt; the chat template dropped or rewrote it"
            )
        spans.append((role, start, start + len(text)))
        cursor = start + len(text)
    return spans


def _char_roles(rendered: str, spans: list[tuple[str, int, int]], offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Role code of each token of the rendered prompt: the segment holding its first non-space
    character; a whitespace-only token belongs to a segment only if it lies wholly inside it."""
    codes = []
    for start, end in offsets:
        piece = rendered[start:end]
        stripped = len(piece) - len(piece.lstrip())
        code = ROLE_CODE["template"]
        for role, s, e in spans:
            inside = s <= start + stripped < e if stripped < len(piece) else s <= start and end <= e and end > start
            if inside:
                code = ROLE_CODE[role]
                break
        codes.append(code)
    return codes


def _align_roles(
    rendered_ids: list[int], rendered_codes: list[int], expanded_ids: list[int], image_ids: frozenset[int]
) -> list[int]:
    """Carry roles from the rendered prompt's tokens to the processor's (image-expanded) ids."""
    codes = [ROLE_CODE["visual"] if t in image_ids else ROLE_CODE["template"] for t in expanded_ids]
    matcher = difflib.SequenceMatcher(None, rendered_ids, expanded_ids, autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            if expanded_ids[block.b + k] not in image_ids:
                codes[block.b + k] = rendered_codes[block.a + k]
    return codes


def encode_batch(adapter: Adapter, prompts: Sequence[Prompt]) -> EncodedBatch:
    """Tokenise ``prompts`` as one left-padded batch and label every position with its role.

    The last position of every row (the one whose next-token distribution is the answer) has the
    role ``generated``; decode steps of a generation are appended as ``generated`` too.
    """
    if not prompts:
        raise PromptError("empty batch: no prompts to encode")
    has_image = [p.image is not None for p in prompts]
    if adapter.multimodal and not all(has_image):
        missing = [p.sample_id for p, h in zip(prompts, has_image) if not h]
        raise PromptError(f"sample {missing[0]}: field 'image' is missing ({adapter.family} prompts need one image each)")
    rendered = [adapter.render(p.user_text, p.image is not None, p.system_message) for p in prompts]
    spans = [locate_segments(p, r) for p, r in zip(prompts, rendered)]
    images = [p.image for p in prompts] if adapter.multimodal else None
    inputs = adapter.encode(rendered, images)
    ids = inputs["input_ids"]
    attention = inputs["attention_mask"].bool()
    roles = torch.full_like(ids, ROLE_CODE["pad"])
    image_ids = frozenset(adapter.image_token_ids)
    tokenizer = adapter.tokenizer
    for row, (prompt, text, row_spans) in enumerate(zip(prompts, rendered, spans)):
        encoded = tokenizer(text, return_offsets_mapping=True)
        char_codes = _char_roles(text, row_spans, encoded["offset_mapping"])
        kept = torch.nonzero(attention[row]).flatten()
        codes = _align_roles(encoded["input_ids"], char_codes, ids[row, kept].tolist(), image_ids)
        roles[row, kept] = torch.tensor(codes, dtype=roles.dtype)
        found = {ROLES[c] for c in codes}
        for role, _, _ in row_spans:
            if role not in found:
                raise PromptError(f"sample {prompt.sample_id}: segment {role!r} has no token after tokenisation")
    if not bool(attention[:, -1].all()):
        raise PromptError("the processor did not left-pad the batch; the last position must be real in every row")
    roles[:, -1] = ROLE_CODE["generated"]
    return EncodedBatch(inputs=inputs, roles=roles, sample_ids=[p.sample_id for p in prompts])


@dataclass
class RoleSummary:
    """Human-readable dump of one row, for debugging prompts."""

    tokens: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)


def describe_row(adapter: Adapter, batch: EncodedBatch, index: int) -> RoleSummary:
    ids = batch.inputs["input_ids"][index].tolist()
    return RoleSummary(
        tokens=adapter.tokenizer.convert_ids_to_tokens(ids), roles=[ROLES[c] for c in batch.roles[index].tolist()]
    )
