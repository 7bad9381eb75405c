"""Logit-lens profile (§4.1): readouts at the readout role's tokens (Eq 1, 5) before the layer,
after attention and after the MLP, attention/MLP logit-difference attribution (Eq 7–8), per-head
attribution (Eq 9), LDAR (Eq 6) and the readout-vs-answer-position synchronisation rate."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import xarray as xr

from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import TracedSample
from ..readouts.metrics import decide, ldar, margin, synchronisation_rate, topk_readout
from ..readouts.subspaces import SUBSPACES, Subspaces, subspace_logits
from ..results.schema import OUTCOMES, sample_coords
from ..tracer.batching import encode_samples
from ..tracer.positions import positions
from ..tracer.trace import SITES, saved_bytes, trace_batch
from .base import Advance, Analysis, Cost, Resolved
from .configs import LensConfig


def _rate_by_outcome(rate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor,
                     followed: np.ndarray) -> np.ndarray:
    out = np.full((len(OUTCOMES), a.shape[1]), np.nan)
    masks = {"followed": followed, "failed": ~followed, "all": np.ones_like(followed)}
    for o, outcome in enumerate(OUTCOMES):
        if masks[outcome].any():
            index = torch.from_numpy(np.flatnonzero(masks[outcome]))
            out[o] = rate(a[index], b[index]).numpy()
    return out


def top_direction(answer_logits: torch.Tensor, subspaces: Subspaces) -> torch.Tensor:
    """Per sample, +1 at the compliant dictionary's top id and -1 at the competing one's (by the final
    answer logits), 0 elsewhere: the unembedding direction the linear head attribution projects on."""
    low = torch.finfo(answer_logits.dtype).min
    out = torch.zeros_like(answer_logits)
    rows = torch.arange(len(out))
    out[rows, answer_logits.masked_fill(~subspaces.compliant, low).argmax(-1)] = 1.0
    out[rows, answer_logits.masked_fill(~subspaces.competing, low).argmax(-1)] = -1.0
    return out


def with_lens_aggregates(ds: xr.Dataset) -> xr.Dataset:
    """(Re)compute the sample aggregates of a lens result from its per-sample variables: LDAR (Eq 6)
    and the synchronisation rate, per outcome (followed, failed, all) and layer (post site)."""
    instruction = torch.from_numpy(ds.margin.sel(site="post").transpose("sample", "layer").values)
    generated_readout = ds.readout_generated.sel(site="post").transpose("sample", "layer", "subspace").values
    generated = margin(torch.from_numpy(generated_readout))
    final = torch.from_numpy(ds.final_margin.values)
    followed = ds.followed.values.astype(bool)
    out = ds.drop_vars(["ldar", "sync_rate"], errors="ignore").assign_coords(outcome=list(OUTCOMES))
    out["ldar"] = (("outcome", "layer"), _rate_by_outcome(ldar, instruction, final, followed))
    out["sync_rate"] = (("outcome", "layer"), _rate_by_outcome(synchronisation_rate, instruction, generated, followed))
    return out


@dataclass(frozen=True)
class LensPlan(Resolved):
    """A lens profile resolved against a model: its options and the model's layer and head counts."""

    top_k: int
    heads: bool
    readout_role: str
    subspace_score: str
    n_layers: int
    n_heads: int

    def as_config(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "heads": self.heads, "readout_role": self.readout_role,
                "subspace_score": self.subspace_score}


class LensProfile(Analysis[TracedSample]):
    """Per-sample readouts and attributions per batch; LDAR and sync rate over all samples.

    >>> lens = anchors.run(anchors.LensProfile(top_k=3), "organism", samples)
    >>> lens.ldar.dims, lens.head_attribution.sizes["head"]
    (('outcome', 'layer'), 8)"""

    experiment = "lens_profile"
    edits = False
    Config = LensConfig

    def resolve(self, adapter: Adapter, items: Sequence[TracedSample] = ()) -> LensPlan:
        config = self.config
        config.check()
        return LensPlan(config.top_k, config.heads, config.readout_role, config.subspace_score, adapter.shape.n_layers,
                        adapter.shape.n_heads)

    def cost(self, plan: LensPlan, adapter: Adapter, chunk: Sequence[TracedSample]) -> Cost:
        encoded, space = encode_samples(adapter, chunk)
        read = positions(encoded, plan.readout_role)[0].shape[1]
        returned = saved_bytes(len(chunk), len(space.union), read, plan.n_layers, plan.n_heads, lens=True,
                               heads=plan.heads)
        return Cost(1, 1, 1, length=int(encoded.roles.shape[1]), returned=returned)

    def run_batch(self, plan: LensPlan, loaded: LoadedModel, chunk: Sequence[TracedSample],
                  advance: Advance) -> xr.Dataset:
        encoded, space = encode_samples(loaded.adapter, chunk)
        space = dataclasses.replace(space, score=plan.subspace_score)
        out = trace_batch(loaded, encoded, space, lens=True, heads=plan.heads, readout_role=plan.readout_role)
        readout = topk_readout(out.readout, out.valid, plan.top_k)  # (B, L, site, 2)
        pre, mid, post = (readout[:, :, SITES.index(s)] for s in SITES)
        attn, mlp = mid - pre, post - mid
        data = {
            "readout": (("sample", "layer", "site", "subspace"), readout.numpy()),
            "readout_generated": (("sample", "layer", "site", "subspace"), out.readout_generated.numpy()),
            "margin": (("sample", "layer", "site"), margin(readout).numpy()),
            "attn_attribution": (("sample", "layer", "subspace"), attn.numpy()),
            "mlp_attribution": (("sample", "layer", "subspace"), mlp.numpy()),
            "attn_attribution_margin": (("sample", "layer"), margin(attn).numpy()),
            "mlp_attribution_margin": (("sample", "layer"), margin(mlp).numpy()),
            "final_margin": ("sample", margin(subspace_logits(out.answer_logits, space)).numpy()),
        }
        coords = {
            **sample_coords(chunk, decide(out.top_token, space)),
            "layer": list(range(plan.n_layers)), "site": list(SITES), "subspace": list(SUBSPACES),
        }
        if plan.heads:
            per_head = topk_readout(out.head_readout.transpose(2, 3), out.valid, plan.top_k)  # (B, L, H, 2)
            scores = margin(per_head) - margin(pre)[..., None]
            data["head_attribution"] = (("sample", "layer", "head"), scores.numpy())
            data["head_remainder"] = (("sample", "layer"), (margin(attn) - scores.sum(-1)).numpy())
            direction = top_direction(out.answer_logits, space)  # (B, U): +1 compliant top id, -1 competing
            data["head_linear"] = (("sample", "layer", "head"), torch.einsum("blhu,bu->blh", out.head_linear, direction).numpy())
            data["attn_linear"] = (("sample", "layer"), torch.einsum("blu,bu->bl", out.attn_linear, direction).numpy())
            coords["head"] = list(range(plan.n_heads))
        advance(1)
        return xr.Dataset(data, coords=coords)

    def finalise(self, plan: LensPlan, merged: xr.Dataset) -> xr.Dataset:
        return with_lens_aggregates(merged)
