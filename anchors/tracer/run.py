"""One nnsight trace per batch: apply interventions in layer order and read small tensors out.

Everything inside the ``with model.trace(...)`` block is plain torch on real tensors (nnsight ≥0.5
runs the block alongside the forward), so it can run on a remote NDIF server; dictionaries,
roles and positions are turned into tensors before the trace, and labelled arrays are built
after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import nnsight
import torch

from ..interventions.edits import extend_roles, knockout_mask, role_mask, scale_heads
from ..interventions.specs import Intervention, LayerPlan, expand_role, plan_layers
from .loading import LoadedModel
from .roles import ROLE_CODE, EncodedBatch

SITES: tuple[str, ...] = ("pre", "mid", "post")
SUBSPACES: tuple[str, ...] = ("compliant", "competing")


class DictionaryError(ValueError):
    """Answer dictionaries that cannot define a decision subspace."""


@dataclass
class Subspaces:
    """The batch's two answer dictionaries as first-token ids: a union list plus membership."""

    union: torch.Tensor  # (U,) token ids
    compliant: torch.Tensor  # (B, U) bool
    competing: torch.Tensor  # (B, U) bool

    @classmethod
    def from_ids(cls, sample_ids: Sequence[str], compliant: Sequence[Sequence[int]], competing: Sequence[Sequence[int]]) -> "Subspaces":
        for sid, c, k in zip(sample_ids, compliant, competing):
            if not c or not k:
                which = "compliant" if not c else "competing"
                raise DictionaryError(f"sample {sid}: field '{which}_ids' is empty (no dictionary token)")
            shared = set(c) & set(k)
            if shared:
                raise DictionaryError(f"sample {sid}: compliant and competing dictionaries share token ids {sorted(shared)}")
        union = sorted({i for ids in list(compliant) + list(competing) for i in ids})
        index = {token: n for n, token in enumerate(union)}

        def membership(lists: Sequence[Sequence[int]]) -> torch.Tensor:
            out = torch.zeros(len(lists), len(union), dtype=torch.bool)
            for row, ids in enumerate(lists):
                out[row, [index[i] for i in ids]] = True
            return out

        return cls(torch.tensor(union, dtype=torch.long), membership(compliant), membership(competing))

    def to(self, device: torch.device) -> "Subspaces":
        return Subspaces(self.union.to(device), self.compliant.to(device), self.competing.to(device))


def subspace_logits(logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Max logit over each dictionary (Eq 1): (B, ..., U) → (B, ..., 2) [compliant, competing]."""
    shape = (logits.shape[0],) + (1,) * (logits.dim() - 2) + (logits.shape[-1],)
    low = torch.finfo(logits.dtype).min
    compliant = logits.masked_fill(~subspaces.compliant.view(shape), low).amax(-1)
    competing = logits.masked_fill(~subspaces.competing.view(shape), low).amax(-1)
    return torch.stack([compliant, competing], dim=-1)


def gather_positions(roles: torch.Tensor, role: str | tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (B, P) of each row's positions holding ``role`` (padded by repeating the last) and
    the validity mask (B, P)."""
    codes = [ROLE_CODE[r] for r in expand_role(role)]
    rows = [torch.nonzero(torch.isin(r, torch.tensor(codes))).flatten() for r in roles]
    width = max(len(r) for r in rows)
    if width == 0:
        raise ValueError(f"no position holds role {role!r} in this batch")
    index = torch.zeros(len(rows), width, dtype=torch.long)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    for n, r in enumerate(rows):
        if len(r) == 0:
            raise ValueError(f"row {n} has no position holding role {role!r}")
        index[n, : len(r)] = r
        index[n, len(r) :] = r[-1]
        valid[n, : len(r)] = True
    return index, valid


def _take(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return hidden.gather(1, index[..., None].expand(-1, -1, hidden.shape[-1]))


def _apply_layer(
    model, adapter, index: int, step: LayerPlan | None, roles: torch.Tensor, *, prefill: bool, read_z: bool = False,
    decode_step: int = 0,
) -> torch.Tensor | None:
    """Apply one layer's knockouts and head scalings inside a trace (prefill or one decode step).

    Returns the (possibly edited) o_proj input when ``read_z`` or when heads were scaled.
    """
    generated_code = ROLE_CODE["generated"]
    if step and step.knockouts:
        attention = adapter.attention(model, index)
        args, kwargs = attention.inputs
        mask = kwargs.get("attention_mask")
        query_length = kwargs["hidden_states"].shape[1]
        key_length = mask.shape[-1] if mask is not None else roles.shape[1] + (decode_step if not prefill else 0)
        key_roles = extend_roles(roles, key_length, generated_code)
        blocks = [([ROLE_CODE[r] for r in s], [ROLE_CODE[r] for r in t]) for s, t in step.knockouts]
        new_mask = knockout_mask(mask, key_roles, blocks, query_length, kwargs["hidden_states"].dtype)
        attention.inputs = (args, {**kwargs, "attention_mask": new_mask})
    scales = [item for item in (step.head_scales if step else []) if prefill or item[3] == "all"]
    if not scales and not read_z:
        return None
    out_proj = adapter.out_proj(model, index)
    z = out_proj.input
    if scales:
        query_roles = roles if prefill else torch.full(z.shape[:2], generated_code, dtype=roles.dtype, device=roles.device)
        for chosen, alpha, role, _steps in scales:
            z = scale_heads(z, chosen, alpha, role_mask(query_roles, [ROLE_CODE[r] for r in role]), adapter.shape.head_dim)
        out_proj.input = z
    return z


def _remote_kwargs(remote: bool | str) -> dict:
    if not remote:
        return {}
    import anchors

    nnsight.register(anchors)
    return {"remote": remote}


def trace_batch(
    loaded: LoadedModel,
    batch: EncodedBatch,
    subspaces: Subspaces,
    interventions: Sequence[Intervention] = (),
    *,
    lens: bool = False,
    heads: bool = False,
    readout_role: str | tuple[str, ...] = "instruction",
    remote: bool | str = False,
) -> dict[str, torch.Tensor]:
    """Run one forward pass with ``interventions`` and return small tensors (CPU):

    - ``answer_logits`` (B, U): final logits at the answer position on the dictionary ids;
    - ``top_token`` (B,): greedy next token at the answer position;
    - with ``lens``: ``readout`` (B, L, site, P, 2), the subspace logits (Eq 1) at each
      ``readout_role`` position for the residual before the layer, after attention, after the MLP;
      ``readout_generated`` (B, L, site, 2) at the answer position; ``valid`` (B, P);
    - with ``heads``: ``head_readout`` (B, L, P, H, 2), subspace logits of the lens applied to the
      layer input plus one head's update (Eq 9).

    ``remote=True`` sends the trace to an NDIF server (``"local"`` simulates the round trip
    in-process); the ``anchors`` package is registered so its functions travel by value.
    """
    model, adapter = loaded.model, loaded.adapter
    device = loaded.device
    n_layers = adapter.shape.n_layers
    plan = plan_layers(list(interventions), n_layers)
    roles = batch.roles.to(device)
    space = subspaces.to(device)
    union = space.union
    index, valid = gather_positions(batch.roles, readout_role)
    index = index.to(device)
    last = torch.full((roles.shape[0], 1), roles.shape[1] - 1, dtype=torch.long, device=device)

    def read(hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        at_readout = subspace_logits(adapter.lens_logits(model, _take(hidden, index), union), space)
        at_answer = subspace_logits(adapter.lens_logits(model, _take(hidden, last), union), space)[:, 0]
        return at_readout, at_answer

    inputs = batch.inputs.to(device)
    # logits_to_keep=1: the model unembeds the answer position only, never (batch, seq, vocab)
    with torch.no_grad(), model.trace(inputs, logits_to_keep=1, **_remote_kwargs(remote)):
        readout, readout_generated, head_readout = [], [], []
        for i in range(n_layers):
            step = plan.get(i)
            if lens or heads:
                pre = adapter.layer(model, i).input
            z = _apply_layer(model, adapter, i, step, roles, prefill=True, read_z=heads)
            if heads:
                base = _take(pre, index)
                contributions = adapter.head_contributions(model, i, _take(z, index))
                head_readout.append(
                    subspace_logits(adapter.lens_logits(model, base[:, :, None] + contributions, union), space)
                )
            if lens:
                mid = adapter.mid_norm(model, i).input
                post = adapter.layer(model, i).output
                per_site = [read(h) for h in (pre, mid, post)]
                readout.append(torch.stack([r for r, _ in per_site], dim=1))
                readout_generated.append(torch.stack([g for _, g in per_site], dim=1))
        final = model.output.logits[:, -1]
        result = {"answer_logits": final[:, union], "top_token": final.argmax(-1)}
        if lens:
            result["readout"] = torch.stack(readout, dim=1)
            result["readout_generated"] = torch.stack(readout_generated, dim=1)
        if heads:
            result["head_readout"] = torch.stack(head_readout, dim=1)
        result = nnsight.save(result)
    out = {k: v.detach().cpu() for k, v in result.items()}
    out["valid"] = valid
    return out


def generate_batch(
    loaded: LoadedModel,
    batch: EncodedBatch,
    subspaces: Subspaces,
    interventions: Sequence[Intervention] = (),
    *,
    max_new_tokens: int = 4,
    remote: bool | str = False,
) -> dict[str, torch.Tensor]:
    """Greedy generation with ``interventions``: knockouts act in the prefill and in every decode
    step (decode queries are ``generated`` tokens; the prompt sits in the KV cache); a HeadScale
    acts in the prefill only, or in every step when its ``steps`` is ``"all"``.

    Returns ``tokens`` (B, max_new_tokens) and ``step_logits`` (B, max_new_tokens, U), the logits
    of each step on the dictionary ids.
    """
    model, adapter = loaded.model, loaded.adapter
    device = loaded.device
    plan = plan_layers(list(interventions), adapter.shape.n_layers)
    roles = batch.roles.to(device)
    union = subspaces.union.to(device)
    inputs = batch.inputs.to(device)
    prompt_length = roles.shape[1]
    with torch.no_grad(), model.generate(
        inputs, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens, do_sample=False, **_remote_kwargs(remote)
    ) as tracer:
        step_logits = nnsight.save([])
        for step in tracer.iter[:max_new_tokens]:
            for i, layer_plan in plan.items():
                _apply_layer(model, adapter, i, layer_plan, roles, prefill=step == 0, decode_step=step)
            step_logits.append(adapter.unembed(model).output[:, -1, union])
        tokens = nnsight.save(tracer.result)
    return {"tokens": tokens[:, prompt_length:].cpu(), "step_logits": torch.stack(step_logits, 1).cpu()}
