"""Logit-lens readouts and the paper's metrics (NSSD, LDAR, MFR, attributions)."""

from .metrics import (
    answer_from_text, compliant_probability, decide, ldar, margin, modality_following_ratio, nssd,
    subspace_distribution, synchronisation_rate, topk_readout,
)

__all__ = [
    "answer_from_text", "compliant_probability", "decide", "ldar", "margin", "modality_following_ratio", "nssd",
    "subspace_distribution", "synchronisation_rate", "topk_readout",
]
