"""Token roles and prompt types: the vocabulary every other layer speaks (no torch, no model)."""

from .prompt import MODALITIES, Prompt, PromptError, TracedSample, dictionary_hash
from .roles import ROLE_CODE, ROLE_GROUPS, ROLES, SEGMENT_ROLES, expand_role, role_label

__all__ = [
    "MODALITIES", "Prompt", "PromptError", "ROLES", "ROLE_CODE", "ROLE_GROUPS", "SEGMENT_ROLES", "TracedSample",
    "dictionary_hash", "expand_role", "role_label",
]
