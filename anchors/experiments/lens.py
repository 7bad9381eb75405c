"""Logit-lens profile (§4.1): readouts at the readout role's tokens (Eq 1, 5) before the layer,
after attention and after the MLP, attention/MLP logit-difference attribution (Eq 7–8), per-head
attribution (Eq 9), LDAR (Eq 6) and the readout-vs-answer-position synchronisation rate."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np
import torch
import xarray as xr

from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import TracedSample
from ..prompts.roles import expand_role
from ..readouts.metrics import decide, ldar, margin, synchronisation_rate, topk_readout
from ..readouts.subspaces import SUBSPACES, Subspaces, subspace_logits
from ..results.schema import OUTCOMES, sample_coords
from ..tracer.batching import encode_samples
from ..tracer.trace import SITES, trace_batch
from .base import Advance, Analysis, positive
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


class LensProfile(Analysis[TracedSample]):
    """Per-sample readouts and attributions per batch; LDAR and sync rate over all samples."""

    experiment = "lens_profile"
    Config = LensConfig

    def resolve(self, adapter: Adapter) -> dict[str, Any]:
        shape = adapter.shape
        positive(self.config.top_k, "top_k")
        expand_role(self.config.readout_role)
        self.shape = shape
        return {"top_k": self.config.top_k, "heads": self.config.heads, "readout_role": self.config.readout_role,
                "subspace_score": self.config.subspace_score}

    def run_batch(self, loaded: LoadedModel, chunk: Sequence[TracedSample], advance: Advance) -> xr.Dataset:
        config = self.config
        encoded, space = encode_samples(loaded.adapter, chunk)
        space = dataclasses.replace(space, score=config.subspace_score)
        out = trace_batch(loaded, encoded, space, lens=True, heads=config.heads, readout_role=config.readout_role)
        readout = topk_readout(out.readout, out.valid, config.top_k)  # (B, L, site, 2)
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
            "layer": list(range(self.shape.n_layers)), "site": list(SITES), "subspace": list(SUBSPACES),
        }
        if config.heads:
            per_head = topk_readout(out.head_readout.transpose(2, 3), out.valid, config.top_k)  # (B, L, H, 2)
            scores = margin(per_head) - margin(pre)[..., None]
            data["head_attribution"] = (("sample", "layer", "head"), scores.numpy())
            data["head_remainder"] = (("sample", "layer"), (margin(attn) - scores.sum(-1)).numpy())
            direction = top_direction(out.answer_logits, space)  # (B, U): +1 compliant top id, -1 competing
            data["head_linear"] = (("sample", "layer", "head"), torch.einsum("blhu,bu->blh", out.head_linear, direction).numpy())
            data["attn_linear"] = (("sample", "layer"), torch.einsum("blu,bu->bl", out.attn_linear, direction).numpy())
            coords["head"] = list(range(self.shape.n_heads))
        advance(1)
        return xr.Dataset(data, coords=coords)

    def finalise(self, merged: xr.Dataset) -> xr.Dataset:
        return with_lens_aggregates(merged)
