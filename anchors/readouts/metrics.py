"""The paper's metrics on the small tensors a trace returns (client-side, torch only).

Sign convention everywhere: positive = towards the instruction-compliant answer.
"""

from __future__ import annotations

import torch

from .subspaces import Subspaces

ANSWERS: tuple[str, ...] = ("compliant", "competing", "other")


def subspace_distribution(answer_logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """P̂: the next-token distribution restricted to the decision subspace D = compliant ∪ competing
    ids and renormalised (a softmax over D's logits), (B, U); zero outside each sample's D."""
    inside = subspaces.compliant | subspaces.competing
    logits = answer_logits.double().masked_fill(~inside, float("-inf"))
    return torch.softmax(logits, dim=-1)


def compliant_probability(answer_logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Mass of the compliant dictionary in P̂, (B,)."""
    return (subspace_distribution(answer_logits, subspaces) * subspaces.compliant).sum(-1)


def nssd(before: torch.Tensor, after: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Normalized Signed Structural Divergence (Eq 4), per sample:

    ``sign(p_c(after) − p_c(before)) · KL(P̂_before ‖ P̂_after)``, both distributions restricted to
    the decision subspace. Negative: the cut pathway supported following the instruction.
    """
    p, q = subspace_distribution(before, subspaces), subspace_distribution(after, subspaces)
    inside = subspaces.compliant | subspaces.competing
    terms = torch.where(inside & (p > 0), p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    kl = terms.sum(-1).clamp_min(0.0)
    sign = torch.sign(compliant_probability(after, subspaces) - compliant_probability(before, subspaces))
    return sign * kl


def subspace_mass(union_log_probs: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Probability of each row's decision subspace (compliant ∪ competing), (B,), from the
    full-vocabulary log-probabilities on the union's ids (B, U)."""
    inside = subspaces.compliant | subspaces.competing
    return union_log_probs.masked_fill(~inside, float("-inf")).logsumexp(-1).exp()


def full_kl(reference: torch.Tensor, log_probs: torch.Tensor) -> torch.Tensor:
    """KL(reference ‖ log_probs) over the whole vocabulary, per row (both log-probabilities)."""
    return (reference.exp() * (reference - log_probs)).sum(-1).clamp_min(0.0)


def nssd_full(before: torch.Tensor, after: torch.Tensor, kl: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """NSSD without the binary constraint (the authors' rebuttal): Eq 4's sign rule on the decision
    subspace, times ``kl``, the KL over the whole vocabulary at the answer position (B,)."""
    sign = torch.sign(compliant_probability(after, subspaces) - compliant_probability(before, subspaces))
    return sign * kl.double()


def topk_readout(per_position: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """Eq 5: for each subspace, the mean of its logits over the top-k readout positions.

    ``per_position`` (B, ..., P, 2) with ``valid`` (B, P); k is clipped to each row's count.
    Returns (B, ..., 2).
    """
    if k < 1:
        raise ValueError(f"top-k must be ≥ 1, got {k}")
    shape = (valid.shape[0],) + (1,) * (per_position.dim() - 3) + (valid.shape[1], 1)
    mask = valid.view(shape)
    values = per_position.masked_fill(~mask, float("-inf"))
    counts = valid.sum(1).clamp_max(k)
    top = values.topk(min(k, valid.shape[1]), dim=-2).values
    rank = torch.arange(top.shape[-2]).view((1,) * (top.dim() - 2) + (-1, 1))
    keep = rank < counts.view((-1,) + (1,) * (top.dim() - 1))
    summed = torch.where(keep, top, torch.zeros_like(top)).sum(-2)
    return summed / counts.view((-1,) + (1,) * (summed.dim() - 1)).to(summed.dtype)


def margin(readout: torch.Tensor) -> torch.Tensor:
    """Arbitration margin: compliant − competing over the last (subspace) axis."""
    return readout[..., 0] - readout[..., 1]


def decide(top_token: torch.Tensor, subspaces: Subspaces) -> list[str]:
    """The model's answer from its greedy first token: which dictionary holds it, else 'other'."""
    answers = []
    for row, token in enumerate(top_token.tolist()):
        hit = subspaces.union == token
        if bool((hit & subspaces.compliant[row]).any()):
            answers.append("compliant")
        elif bool((hit & subspaces.competing[row]).any()):
            answers.append("competing")
        else:
            answers.append("other")
    return answers


def answer_from_text(text: str, compliant_forms: list[str], competing_forms: list[str]) -> str:
    """Match a generated string against the two dictionaries' surface forms (first whole-word
    match wins; 'other' if neither or both occur at the same place)."""
    import re

    lowered = text.lower()

    def first(forms: list[str]) -> int:
        hits = [m.start() for f in forms for m in [re.search(rf"(?<!\w){re.escape(f.lower())}(?!\w)", lowered)] if m]
        return min(hits) if hits else -1

    c, k = first(compliant_forms), first(competing_forms)
    if c < 0 and k < 0 or c == k:
        return "other"
    if k < 0 or 0 <= c < k:
        return "compliant"
    return "competing"


def is_degenerate(text: str, tokens: list[int]) -> bool:
    """A generation that is no answer at all: empty (after stripping), or one token repeated."""
    return not text.strip() or (len(tokens) > 1 and len(set(tokens)) == 1)


def answer_from_generation(text: str, tokens: list[int], compliant_forms: list[str], competing_forms: list[str]) -> str:
    """The answer class of a greedy generation: ``degenerate`` (:func:`is_degenerate`), else
    :func:`answer_from_text`'s compliant / competing / other."""
    if is_degenerate(text, tokens):
        return "degenerate"
    return answer_from_text(text, compliant_forms, competing_forms)


def modality_following_ratio(answers: list[str]) -> float:
    """MFR: the fraction of samples answered with the instruction-compliant answer."""
    if not answers:
        raise ValueError("MFR of an empty sample set is undefined")
    return sum(a == "compliant" for a in answers) / len(answers)


def ldar(layer_margin: torch.Tensor, final_margin: torch.Tensor) -> torch.Tensor:
    """Latent Decision Alignment Rate (Eq 6) per layer: the fraction of samples whose instruction-
    token margin at layer l has the sign of the final decision. (B, L), (B,) → (L,). On followed
    samples this is the fraction where the compliant subspace dominates."""
    return ((layer_margin > 0) == (final_margin[:, None] > 0)).double().mean(0)


def synchronisation_rate(instruction_margin: torch.Tensor, generated_margin: torch.Tensor) -> torch.Tensor:
    """Per layer, the fraction of samples whose latent decision (sign of the margin) at the
    instruction tokens agrees with the one at the answer position. (B, L), (B, L) → (L,)."""
    return ((instruction_margin > 0) == (generated_margin > 0)).double().mean(0)
