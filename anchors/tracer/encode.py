"""Tokenise prompts as one left-padded batch and label every position with its token role.

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
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..models.adapters import Adapter, AdapterError
from ..models.adapters.geometry import ImageGeometry
from ..models.adapters.layouts import pixel_size
from ..prompts.prompt import Prompt, PromptError
from ..prompts.roles import ROLE_CODE, ROLES, expand_role


@dataclass
class EncodedBatch:
    """A left-padded processor batch and the role code of every position.

    >>> batch.roles.shape == batch.inputs["input_ids"].shape, batch.sample_ids
    (True, ['d0', 'd1'])"""

    inputs: Any
    roles: torch.Tensor
    sample_ids: list[str]
    #: per row, where each of its visual tokens sits in its image (None for a row without one)
    geometry: tuple[ImageGeometry | None, ...] = ()
    #: why the rows' images have no geometry, where the family's layout is not described
    unplaced: str = ""

    def image_geometry(self, index: int) -> ImageGeometry:
        """Row ``index``'s :class:`~anchors.models.adapters.geometry.ImageGeometry`: for each visual
        position in order, its view, grid cell and rectangle of original pixels.

        >>> batch.image_geometry(0).rects.shape[1]
        4"""
        found = self.geometry[index] if index < len(self.geometry) else None
        if found is None:
            raise AdapterError(self.unplaced or f"sample {self.sample_ids[index]}: the prompt has no image")
        return found

    def mask(self, role: str | tuple[str, ...]) -> torch.Tensor:
        """Boolean (batch, seq) mask of the positions holding ``role``: a role, a group such as
        ``instruction`` or ``cues`` (:data:`~anchors.prompts.roles.ROLE_GROUPS`), a tuple of them, or
        ``pad`` (left padding, which no group holds)."""
        codes = [ROLE_CODE["pad"]] if role == "pad" else [ROLE_CODE[r] for r in expand_role(role)]
        return torch.isin(self.roles, torch.tensor(codes))

    def positions(self, index: int, role: str | tuple[str, ...]) -> list[int]:
        """Row ``index``'s positions holding ``role`` (a role, group or tuple), in order."""
        return torch.nonzero(self.mask(role)[index]).flatten().tolist()


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


def encode_batch(adapter: Adapter, prompts: Sequence[Prompt], *, allow_text_only: bool = False) -> EncodedBatch:
    """Tokenise ``prompts`` as one left-padded batch and label every position with its role.

    The last position of every row (the one whose next-token distribution is the answer) has the
    role ``generated``; decode steps of a generation are appended as ``generated`` too. A VLM's
    prompts need one image each, unless ``allow_text_only`` and none has one (a text benchmark).

    >>> from anchors.organism.task import evaluation_set
    >>> encoded = anchors.encode_batch(view.adapter, [e.prompt for e in evaluation_set(3, 5, held_out=True, prefix="e")])
    >>> bool(encoded.mask("pad").any()), bool(encoded.mask("generated")[:, -1].all())
    (True, True)
    """
    if not prompts:
        raise PromptError("empty batch: no prompts to encode")
    has_image = [p.image is not None for p in prompts]
    text_only = allow_text_only and not any(has_image)
    if adapter.multimodal and not text_only and not all(has_image):
        missing = [p.sample_id for p, h in zip(prompts, has_image) if not h]
        raise PromptError(f"sample {missing[0]}: field 'image' is missing ({adapter.model_type} prompts need one image each)")
    rendered = [adapter.render(p.user_text, p.image is not None, p.system_message) for p in prompts]
    spans = [locate_segments(p, r) for p, r in zip(prompts, rendered)]
    images = [p.image for p in prompts] if adapter.multimodal and not text_only else None
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
    geometry, unplaced = _geometry(adapter, inputs, roles, images)
    _mark_regions(prompts, roles, geometry, unplaced)
    return EncodedBatch(inputs=inputs, roles=roles, sample_ids=[p.sample_id for p in prompts], geometry=geometry,
                        unplaced=unplaced)


def _geometry(adapter: Adapter, inputs: Any, roles: torch.Tensor, images: list | None) -> tuple[tuple, str]:
    """Each row's image geometry, or none with the reason where the family's layout is not described."""
    if not images:
        return (), ""
    counts = (roles == ROLE_CODE["visual"]).sum(dim=1).tolist()
    try:
        return tuple(adapter.image_geometry(inputs, row, pixel_size(image), n) for row, (image, n)
                     in enumerate(zip(images, counts))), ""
    except AdapterError as error:
        return (), str(error)


def _mark_regions(prompts: Sequence[Prompt], roles: torch.Tensor, geometry: tuple, unplaced: str) -> None:
    """Relabel the visual positions of each prompt with a region box: ``region`` where the token's
    rectangle overlaps the box (:meth:`~anchors.models.adapters.geometry.ImageGeometry.overlapping`),
    ``off_region`` elsewhere."""
    for row, prompt in enumerate(prompts):
        if prompt.region is None:
            continue
        if not geometry:
            raise PromptError(f"sample {prompt.sample_id}: field 'region' needs to know where the image tokens sit: "
                              f"{unplaced}")
        visual = torch.nonzero(roles[row] == ROLE_CODE["visual"]).flatten()
        inside = torch.from_numpy(geometry[row].overlapping(prompt.region))
        roles[row, visual] = torch.where(inside, ROLE_CODE["region"], ROLE_CODE["off_region"]).to(roles.dtype)


def describe_row(adapter: Adapter, batch: EncodedBatch, index: int) -> list[tuple[str, str]]:
    """(token, role) of every position of one row, for checking how a prompt was labelled."""
    ids = batch.inputs["input_ids"][index].tolist()
    return list(zip(adapter.tokenizer.convert_ids_to_tokens(ids), [ROLES[c] for c in batch.roles[index].tolist()]))


def check_context(adapter: Adapter, prompts: Sequence[Prompt]) -> None:
    """Refuse any prompt whose encoding (image tokens included) is longer than the model's context,
    before weights are loaded; needs only the config and processor."""
    limit = adapter.max_context
    if not limit:
        return
    for prompt in prompts:
        length = int(encode_batch(adapter, [prompt], allow_text_only=True).roles.shape[1])
        if length > limit:
            raise PromptError(f"sample {prompt.sample_id}: the prompt is {length} tokens, longer than the model's "
                              f"context of {limit} (max_position_embeddings)")
