"""Attribution patching of attention knockouts (AtP): every (pathway, layer) knockout's effect on
the answer estimated from one forward and one backward pass.

A knockout renormalises each target query's attention over the keys it keeps (Eq 3), so the
change of layer i's attention probabilities is known in closed form from the clean pattern A:
with r_q = Σ_{k∈source} A_qk the mass a target query q loses,

    ΔA_qk = A_qk · (r_q − [k ∈ source]) / (1 − r_q).

The first-order estimate of the change of the answer metric M is Σ_{heads, q ∈ target, k} ∂M/∂A_qk ·
ΔA_qk = Σ_q (r_q · Σ_k G_qk A_qk − Σ_{k∈source} G_qk A_qk) / (1 − r_q), G = ∂M/∂A; a window's
estimate is the sum over its layers. M is the log-odds of the compliant vs the competing
dictionary at the answer position (log Σ_c e^{logit} − log Σ_k e^{logit}): the probability of the
followed answer saturates and has no gradient, and KL has zero gradient at the clean run.

Needs the attention probabilities, so the trace runs with eager attention (switched for the trace
and back); they are kept for the backward pass: layers × batch × heads × sequence² values, the
limit on sequence length (7B-sized, 28 layers × 28 heads, batch 8, 1,000 tokens: ≈12.5 GB in bf16).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import nnsight
import torch

from ..interventions.edits import role_mask
from ..models.adapters import hf_module
from ..models.loading import LoadedModel
from ..prompts.roles import ROLE_CODE, expand_role
from ..readouts.metrics import subspace_mass
from ..readouts.subspaces import Subspaces
from .encode import EncodedBatch
from .reuse import CleanRun, capture_layer, capture_output, captured, clean_trace_options
from .trace import to_host

RolePair = tuple[str | tuple[str, ...], str | tuple[str, ...]]


@contextmanager
def eager_without_weight_grads(module: torch.nn.Module) -> Iterator[None]:
    """Eager attention (which returns the probabilities) and no gradients into the weights, for the
    duration of one trace; the model's attention implementation and flags are restored after."""
    implementation = module.config._attn_implementation
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.set_attn_implementation("eager")
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        module.set_attn_implementation(implementation)
        for parameter, flag in flags:
            parameter.requires_grad_(flag)


def knockout_effect(probabilities: torch.Tensor, grad: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """First-order change (B,) of the metric when layer's (source key → target query) edges are cut;
    ``probabilities`` and ``grad`` (B, H, Q, K), ``source`` (B, K) and ``target`` (B, Q) masks."""
    a, g = probabilities.float(), grad.float()
    weighted = g * a
    removed = (a * source[:, None, None, :]).sum(-1)  # r_q (B, H, Q)
    kept = (1 - removed).clamp_min(torch.finfo(torch.float32).eps)
    per_query = (removed * weighted.sum(-1) - (weighted * source[:, None, None, :]).sum(-1)) / kept
    return (per_query * target[:, None, :]).sum(dim=(1, 2))


def log_odds(answer_logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """log Σ_compliant e^{logit} − log Σ_competing e^{logit} over the dictionary ids, (B,)."""
    compliant = answer_logits.masked_fill(~subspaces.compliant, float("-inf")).logsumexp(-1)
    return compliant - answer_logits.masked_fill(~subspaces.competing, float("-inf")).logsumexp(-1)


def atp_knockouts(loaded: LoadedModel, batch: EncodedBatch, subspaces: Subspaces, pathways: Sequence[RolePair],
                  start_layers: Sequence[int]) -> tuple[CleanRun, torch.Tensor]:
    """The clean run (as :func:`~.reuse.clean_run` captures it, for exact reruns) and the estimated
    change of the log-odds (P, L, B) when each pathway is cut at each single layer (a window's
    estimate is the sum over its layers)."""
    model, adapter = loaded.model, loaded.adapter
    n_layers, device = adapter.shape.n_layers, loaded.device
    roles = batch.roles.to(device)

    def mask(role: Any) -> torch.Tensor:
        return role_mask(roles, [ROLE_CODE[r] for r in expand_role(role)]).float()

    masks = [(mask(source), mask(target)) for source, target in pathways]
    space = subspaces.to(device)
    with torch.enable_grad(), eager_without_weight_grads(hf_module(model)), model.trace(batch.inputs.to(device),
                                                                                        **clean_trace_options()):
        saved: dict[str, Any] = {"hidden": {}, "masks": [], "kwargs": [], "between": {}}
        probabilities = []
        for i in range(n_layers):
            if i == 0:  # gradients flow from the first layer's input on, never into the weights
                adapter.layer(model, 0).input = adapter.layer(model, 0).input.detach().requires_grad_(True)
            capture_layer(model, adapter, i, start_layers, saved)
            probabilities.append(adapter.attention(model, i).output[1])
            capture_output(model, adapter, i, start_layers, saved)
        output = model.output
        final = output.logits[:, -1]
        answer = final[:, space.union]
        metric = log_odds(answer.float(), space)
        effects = []
        with metric.sum().backward():
            for i in reversed(range(n_layers)):
                grad = probabilities[i].grad
                effects.append(torch.stack([knockout_effect(probabilities[i], grad, s, t) for s, t in masks]))
        log_probs = final.detach().float().log_softmax(-1)
        saved["answer"] = {"answer_logits": answer.detach(), "top_token": final.argmax(-1), "log_probs": log_probs,
                           "subspace_mass": subspace_mass(log_probs[:, space.union], space)}
        saved["effects"] = torch.stack(effects[::-1], dim=1)
        saved["cache"] = output.past_key_values
        saved = nnsight.save(saved)
    return captured(saved, {k: to_host(v) for k, v in saved["answer"].items()}, adapter), to_host(saved["effects"])
