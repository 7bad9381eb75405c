"""Attention knockout profile (§3.2, Fig 2; several windows give App C.1's sensitivity sweep):
cut a pathway in a window of layers and score the change of the answer with NSSD (Eq 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from ..interventions.plan import cut_layers
from ..interventions.specs import Knockout
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import TracedSample
from ..prompts.roles import role_label
from ..readouts.metrics import compliant_probability, decide, nssd, nssd_full
from ..results.schema import by_instructed_modality, sample_coords
from ..tracer.batching import encode_samples
from ..tracer.sweep import Method, per_rerun, sweep_forwards, sweep_knockouts, sweep_steps
from ..tracer.trace import saved_bytes
from .base import Advance, Analysis, Cost, Resolved, check_layers, check_window
from .configs import KnockoutConfig, Pathway, parse_pathway


def knockout_batch(loaded: LoadedModel, chunk: Sequence[TracedSample], pathways: Mapping[str, Pathway],
                   windows: Sequence[int], layers: Sequence[int], advance: Advance, *, method: Method = "reuse",
                   max_rows: int | None = None, verify_top: int = 0) -> dict[str, Any]:
    """The clean answer and, for every (pathway, window, layer) knockout of the batch, NSSD and the
    compliant probability after the cut, and whether they are exact (see :func:`sweep_knockouts`)."""
    encoded, space = encode_samples(loaded.adapter, chunk)
    settings = [Knockout(source, target, layer, window) for source, target in pathways.values()
                for window in windows for layer in layers]
    sweep = sweep_knockouts(loaded, encoded, space, settings, method=method, max_rows=max_rows, verify_top=verify_top,
                            advance=advance)
    base = sweep.clean
    shape = (len(pathways), len(windows), len(layers), len(chunk))
    divergence = torch.stack([nssd(base.answer_logits, logits, space) for logits in sweep.logits])
    divergence_full = torch.stack([nssd_full(base.answer_logits, logits, kl, space)
                                   for logits, kl in zip(sweep.logits, sweep.full_kl)])
    p_after = torch.stack([compliant_probability(logits, space) for logits in sweep.logits])
    answers_after = np.array([decide(tokens, space) if exact else ["unknown"] * len(chunk)
                              for tokens, exact in zip(sweep.top_token, sweep.exact.tolist())])
    return {"nssd": _samples_first(divergence, shape), "nssd_full": _samples_first(divergence_full, shape),
            "p_compliant": _samples_first(p_after, shape),
            "exact": _samples_first(sweep.exact[:, None].expand(-1, len(chunk)), shape),
            "answer_after": np.moveaxis(answers_after.reshape(shape), -1, 0),
            "p_subspace": _samples_first(sweep.subspace_mass, shape),
            "answers": decide(base.top_token, space),
            "p_compliant_base": compliant_probability(base.answer_logits, space).numpy(),
            "p_subspace_base": base.subspace_mass.numpy()}


def knockout_cost(adapter: Adapter, chunk: Sequence[TracedSample], pathways: Mapping[str, Pathway],
                  windows: Sequence[int], layers: Sequence[int], method: str, max_rows: int | None,
                  verify_top: int = 0) -> Cost:
    """:func:`knockout_batch`'s forwards, counted from the batch's roles (:func:`sweep_forwards`);
    one request per batch on a remote model (``naive``: a session of traces; ``reuse``: a session of
    two clean traces, the reruns calling the decoder layers on the server; ``atp`` cannot run there)."""
    encoded, space = encode_samples(adapter, chunk)
    settings = [Knockout(source, target, layer, window) for source, target in pathways.values()
                for window in windows for layer in layers]
    shape, rows = adapter.shape, len(chunk)
    forwards, bound = sweep_forwards(encoded.roles, settings, method, shape.n_layers, max_rows, verify_top)
    starts = len({min(k.layers(shape.n_layers)) for k in settings})
    returned = (1 + len(settings)) * saved_bytes(rows, len(space.union), 0, shape.n_layers, shape.n_heads, full_kl=True)
    return Cost(forwards, 1 + len(settings), 1, bound, int(encoded.roles.shape[1]), returned, starts,
                min(len(settings), per_rerun(rows, len(settings), max_rows)) * rows, len(settings),
                forwards + 1 if method == "reuse" else None)


def _samples_first(values: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """(settings, B) in (pathway, window, layer) order → (B, pathway, window, layer)."""
    return np.moveaxis(values.reshape(shape).numpy(), -1, 0)


def after_cut_mfr(ds: xr.Dataset) -> xr.Dataset:
    """MFR after each knockout and without one, over the samples instructed to follow text, vision,
    and all (``instructed_modality``); NaN where the answers after a cut were estimated (atp)."""
    follows = (ds.answer_after == "compliant").where(ds.answer_after != "unknown")
    after = by_instructed_modality(follows, ds.instructed.values)
    base = by_instructed_modality(ds.followed.astype(float), ds.instructed.values)
    return ds.assign(mfr_after=after, mfr_base=base)


def knockout_dataset(chunk: Sequence[TracedSample], arrays: Mapping[str, Any], pathways: Mapping[str, Pathway],
                     windows: Sequence[int], layers: Sequence[int]) -> xr.Dataset:
    dims = ("sample", "pathway", "window", "layer")
    coords = sample_coords(chunk, arrays["answers"])
    return xr.Dataset(
        {**{name: (dims, arrays[name]) for name in ("nssd", "nssd_full", "p_compliant", "exact", "answer_after",
                                                     "p_subspace")},
         "p_compliant_base": ("sample", arrays["p_compliant_base"]), "p_subspace_base": ("sample", arrays["p_subspace_base"]),
         "source": ("pathway", [role_label(s) for s, _ in pathways.values()]),
         "target": ("pathway", [role_label(t) for _, t in pathways.values()])},
        coords={**coords, "pathway": list(pathways), "window": list(windows), "layer": list(layers)},
    )


@dataclass(frozen=True)
class KnockoutPlan(Resolved):
    """A knockout profile resolved against a model: the pathways (name → (source roles, target
    roles)), the sorted windows, the window centres, and per (window, layer) how many layers with
    softmax attention the cut covers (fewer in a hybrid decoder)."""

    pathways: tuple[tuple[str, Pathway], ...]
    windows: tuple[int, ...]
    layers: tuple[int, ...]
    cut: tuple[tuple[int, ...], ...]
    main_window: int
    method: str
    max_batch_rows: int
    verify_top: int

    @property
    def named(self) -> dict[str, Pathway]:
        return dict(self.pathways)

    def as_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"pathways": {k: [role_label(s), role_label(t)] for k, (s, t) in self.pathways},
                                  "windows": list(self.windows), "main_window": self.main_window,
                                  "layers": list(self.layers), "method": self.method}
        if self.method == "atp+verify":
            config["verify_top"] = self.verify_top
        if len(self.windows) == 1:
            config["window"] = self.windows[0]
        return config


class KnockoutProfile(Analysis[TracedSample]):
    """NSSD (Eq 4) and the compliant probability for every (pathway, window, layer) knockout.

    The analyses' examples share ``samples``: four of the organism's, as
    ``DataFolder.open(write_data(folder, 2)).traced(anchors.ModelSpec("organism").adapter().tokenizer)``.

    >>> ko = anchors.run(anchors.KnockoutProfile(windows=(1,), layers=(0, 1), pathways=("instruction->generated",)),
    ...                  "organism", samples)
    >>> ko.nssd.dims
    ('sample', 'pathway', 'window', 'layer')"""

    experiment = "knockout_profile"
    Config = KnockoutConfig

    def resolve(self, adapter: Adapter, items: Sequence[TracedSample] = ()) -> KnockoutPlan:
        self.config.check()
        shape = adapter.shape
        windows = tuple(sorted(set(int(w) for w in self.config.windows)))
        layers = check_layers(self.config.layers, shape)
        # A window with no softmax-attention layer to cut is refused here, before any weights load.
        softmax = adapter.attention_layers(None)
        cut = tuple(tuple(len(cut_layers(Knockout("visual", "instruction", layer, w), shape.n_layers, softmax))
                          for layer in layers) for w in windows)
        return KnockoutPlan(tuple((name, parse_pathway(name)) for name in self.config.pathways), windows, layers, cut,
                            int(self.config.windows[0]), self.config.method, self.config.max_batch_rows,
                            self.config.verify_top, notes=tuple(n for w in windows for n in check_window(w, shape)))

    def steps(self, plan: KnockoutPlan, chunk: Sequence[TracedSample]) -> int:
        return sweep_steps(len(plan.pathways) * len(plan.windows) * len(plan.layers), len(plan.pathways), plan.method,
                           plan.verify_top)

    def cost(self, plan: KnockoutPlan, adapter: Adapter, chunk: Sequence[TracedSample]) -> Cost:
        return knockout_cost(adapter, chunk, plan.named, plan.windows, plan.layers, plan.method, plan.max_batch_rows,
                             plan.verify_top)

    def run_batch(self, plan: KnockoutPlan, loaded: LoadedModel, chunk: Sequence[TracedSample],
                  advance: Advance) -> xr.Dataset:
        arrays = knockout_batch(loaded, chunk, plan.named, plan.windows, plan.layers, advance, method=plan.method,
                                max_rows=plan.max_batch_rows, verify_top=plan.verify_top)
        return knockout_dataset(chunk, arrays, plan.named, plan.windows, plan.layers)

    def finalise(self, plan: KnockoutPlan, merged: xr.Dataset) -> xr.Dataset:
        merged["cut_layers"] = (("window", "layer"), np.array(plan.cut))
        return after_cut_mfr(merged)
