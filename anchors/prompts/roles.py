"""Token roles: every position of a batch holds exactly one; groups name common unions."""

from __future__ import annotations

from typing import Sequence

from ..errors import InputError

#: Every token role, in code order (a batch's ``roles`` holds the index of each position's role).
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
    # a row whose prompt has a region box splits its visual positions (codes kept after the others)
    "region",
    "off_region",
)
ROLE_CODE: dict[str, int] = {role: code for code, role in enumerate(ROLES)}
#: ``visual`` names every image position: a row with a region box labels them ``region`` (its
#: token rectangle overlaps the box) or ``off_region``, and both stay ``visual``.
VISUAL_PARTS: tuple[str, ...] = ("visual", "region", "off_region")
SEGMENT_ROLES: frozenset[str] = frozenset({"system", "context", "question", "instruction_semantic", "instruction_format"})

#: Role groups usable wherever a role is expected: ``instruction``, ``cues``, ``prompt``, ``all``.
ROLE_GROUPS: dict[str, tuple[str, ...]] = {
    "instruction": ("instruction_semantic", "instruction_format"),
    "cues": ("visual", "context"),
    "prompt": ("template", "system", "visual", "context", "question", "instruction_semantic", "instruction_format"),
    "all": ("template", "system", "visual", "context", "question", "instruction_semantic", "instruction_format", "generated"),
}


def expand_role(role: str | tuple[str, ...]) -> tuple[str, ...]:
    """A role name, a group name (``ROLE_GROUPS``), or a tuple of them, as plain role names
    (``visual`` as :data:`VISUAL_PARTS`).

    >>> expand_role("cues")
    ('visual', 'region', 'off_region', 'context')"""
    names = (role,) if isinstance(role, str) else tuple(role)
    out: list[str] = []
    for name in names:
        if name in ROLE_GROUPS:
            out.extend(expand_role(ROLE_GROUPS[name]))
        elif name == "visual":
            out.extend(VISUAL_PARTS)
        elif name in ROLES and name != "pad":
            out.append(name)
        else:
            raise InputError(f"unknown role {name!r}; roles: {ROLES[1:]}, groups: {tuple(ROLE_GROUPS)}")
    return tuple(dict.fromkeys(out))


def role_label(role: str | tuple[str, ...]) -> str:
    """One string for a role or a tuple of roles (``visual+context``), as stored in results."""
    return role if isinstance(role, str) else "+".join(role)


def role_spans(tokens: Sequence[tuple[str, str]]) -> list[tuple[int, int, str, str]]:
    """Runs of consecutive positions with one role, as (first, last, role, text): the tokens joined,
    or a run of one repeated visual token as ``"TOKEN × N"``.

    >>> role_spans([("<img>", "visual"), ("<img>", "visual"), ("The", "context"), (" ball", "context")])
    [(0, 1, 'visual', '<img> × 2'), (2, 3, 'context', 'The ball')]"""
    spans: list[tuple[int, int, str, str]] = []
    start = 0
    for end in range(len(tokens)):
        if end + 1 < len(tokens) and tokens[end + 1][1] == tokens[start][1]:
            continue
        run = [str(text) for text, _ in tokens[start:end + 1]]
        repeated = len(run) > 1 and len(set(run)) == 1
        spans.append((start, end, str(tokens[start][1]), f"{run[0]} × {len(run)}" if repeated else "".join(run)))
        start = end + 1
    return spans
