"""Logit-lens readouts, the decision subspace and the paper's metrics (NSSD, LDAR, MFR, attributions)."""

from .lens import head_contributions, lens_logits
from .metrics import (
    answer_from_text, compliant_probability, decide, ldar, margin, modality_following_ratio, nssd,
    subspace_distribution, synchronisation_rate, topk_readout,
)
from .subspaces import SUBSPACES, DictionaryError, Subspaces, subspace_logits

__all__ = [
    "DictionaryError", "SUBSPACES", "Subspaces", "answer_from_text", "compliant_probability", "decide",
    "head_contributions", "lens_logits", "ldar", "margin", "modality_following_ratio", "nssd", "subspace_distribution",
    "subspace_logits", "synchronisation_rate", "topk_readout",
]
