"""Head ranking (Eq 9) and head interventions (§4.2, Fig 5c, Table 4): block the top-k heads on
followed samples, amplify them on failed samples, against random-k and modality-shared heads,
plus an amplification-coefficient sweep. Each batch records, per sample, whether it still follows
the instruction under every setting; the MFRs are means over samples after merging."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import xarray as xr

from ..interventions.specs import HeadScale
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import MODALITIES, TracedSample
from ..readouts.metrics import answer_from_generation, decide
from ..results.heads import Heads, split_heads
from ..results.schema import by_instructed_modality, sample_coords
from ..tracer.batching import encode_samples
from ..tracer.generate import generate_batch
from ..tracer.remote import in_one_request
from ..tracer.trace import SAVED_TENSOR_OVERHEAD, trace_batch
from .base import Advance, Cost, RankedHeadsAnalysis, Resolved, draw_heads, head_count
from .configs import InterventionConfig

MODES: dict[str, bool] = {"block": True, "amplify": False}  # mode -> evaluated on followed (True) or failed samples


def evaluated(mode: str, followed: np.ndarray) -> np.ndarray:
    """Which samples ``mode`` is evaluated on: blocking on followed samples, amplifying on failed."""
    return followed == MODES[mode]
SELECTIONS: tuple[str, ...] = ("targeted", "random", "shared")


@dataclass(frozen=True)
class InterventionPlan(Resolved):
    """A head intervention resolved against a model: head counts, the alpha sweep, each
    modality's ranking restricted to softmax-attention layers (``order``, flat indices best first),
    the shared heads and the random draws (``random[draw][k index]``, from softmax-attention layers
    too), and the (layer, head) grid of the ranking."""

    ks: tuple[int, ...]
    alphas: tuple[float, ...]
    alpha_k: int
    shared_top: int
    order: tuple[tuple[str, tuple[int, ...]], ...]
    shared: tuple[int, ...]
    random: tuple[tuple[tuple[int, ...], ...], ...]
    grid: tuple[int, int]
    config: dict[str, Any]

    def heads(self, flat: Sequence[int]) -> Heads:
        return split_heads(flat, self.grid[1])

    def top(self, modality: str, k: int) -> Heads:
        return self.heads(dict(self.order)[modality][:k])

    def as_config(self) -> dict[str, Any]:
        return dict(self.config)


class HeadIntervention(RankedHeadsAnalysis[TracedSample]):
    """Needs a head ranking: pass the lens result (``lens``) the heads are ranked from.

    >>> lens = anchors.run(anchors.LensProfile(top_k=3), "organism", samples)
    >>> heads = anchors.run(anchors.HeadIntervention(lens, ks=(1, 2), n_random=2, alphas=(2.0,)), "organism", samples)
    >>> heads.mfr.sel(instructed_modality="all").dims
    ('mode', 'selection', 'k')"""

    experiment = "head_intervention"
    Config = InterventionConfig
    unit = "settings"

    def resolve(self, adapter: Adapter, items: Sequence[TracedSample] = ()) -> InterventionPlan:
        self.check_ranking(adapter)
        config = self.config
        config.check()
        total = adapter.shape.n_layers * adapter.shape.n_heads
        ks, alphas = self.head_counts(adapter, config.ks), tuple(sorted(set(config.alphas)))
        alpha_k = head_count(config.alpha_k, total) if config.alpha_k else max(ks)
        shared_top = head_count(config.shared_top, total) if config.shared_top else max(ks)
        rankings = {m: self.softmax_heads(adapter, m) for m in MODALITIES}
        order = {m: tuple(ranked) for m, (ranked, _) in rankings.items()}
        position = {m: {h: r for r, h in enumerate(order[m])} for m in MODALITIES}
        both = set.intersection(*(set(order[m][:shared_top]) for m in MODALITIES))
        shared = tuple(sorted(both, key=lambda h: sum(position[m][h] for m in MODALITIES)))
        rng, pool = np.random.default_rng(config.seed), rankings[MODALITIES[0]][1]
        random = tuple(tuple(tuple(draw_heads(rng, pool, k)) for k in ks) for _ in range(config.n_random))
        resolved = {**{f: getattr(config, f) for f in ("amplify_alpha", "n_random", "role", "seed", "answer_from")},
                    **({"max_new_tokens": config.max_new_tokens} if config.answer_from == "generation" else {}),
                    "ks": list(ks), "alphas": list(alphas), "alpha_k": alpha_k, "shared_top": shared_top}
        percentages = {f: getattr(config, f) for f in ("ks", "alpha_k", "shared_top") if "%" in str(getattr(config, f))}
        return InterventionPlan(ks, alphas, alpha_k, shared_top, tuple(order.items()), shared, random,
                                (adapter.shape.n_layers, adapter.shape.n_heads),
                                resolved | ({"as_given": percentages} if percentages else {}))

    def steps(self, plan: InterventionPlan, chunk: Sequence[TracedSample]) -> int:
        return 1 + len(MODES) * len(plan.ks) * (2 + self.config.n_random) + len(plan.alphas)

    def settings(self, plan: InterventionPlan) -> list[tuple[tuple, str, dict[str, Heads], float, int | None]]:
        """Every setting a batch runs, as (cell, mode, heads per instructed modality, alpha, alpha
        column): per mode and head count the targeted heads, each random draw and the shared heads,
        then the amplification sweep. The cell says where its results go (``run_batch``)."""
        config, out = self.config, []

        def same(flat: Sequence[int]) -> dict[str, Heads]:
            return {m: plan.heads(flat) for m in MODALITIES}

        for m, mode in enumerate(MODES):
            alpha = 0.0 if mode == "block" else config.amplify_alpha
            for i, k in enumerate(plan.ks):
                out.append((("targeted", m, i), mode, {mod: plan.top(mod, k) for mod in MODALITIES}, alpha, None))
                out += [(("draw", m, d, i), mode, same(plan.random[d][i]), alpha, None) for d in range(config.n_random)]
                if plan.shared:
                    out.append((("shared", m, i), mode, same(plan.shared[:k]), alpha, None))
        top = {mod: plan.top(mod, plan.alpha_k) for mod in MODALITIES}
        return out + [(("alpha", a), "amplify", top, alpha, a) for a, alpha in enumerate(plan.alphas)]

    def cost(self, plan: InterventionPlan, adapter: Adapter, chunk: Sequence[TracedSample]) -> Cost:
        """The unedited trace, then per setting one trace per instructed modality in the batch whose
        samples the setting is evaluated on (blocking: followed; amplifying: failed); two requests.
        An upper bound, reached when each modality has followed and failed samples."""
        settings = len(self.settings(plan))
        traces = 1 + settings * len({s.instructed for s in chunk})
        per_trace = (8 * len(chunk) if self.config.answer_from == "first-token"
                     else 8 * len(chunk) * self.config.max_new_tokens) + SAVED_TENSOR_OVERHEAD
        return Cost(traces, traces, 2, bound=True, length=int(encode_samples(adapter, chunk)[0].roles.shape[1]),
                    returned=traces * per_trace, settings=settings)

    def answers(self, loaded: LoadedModel, samples: Sequence[TracedSample], encoded: Any, space: Any,
                spec: Sequence[HeadScale] = ()) -> list[str]:
        """Each sample's answer class under ``spec``, read as ``answer_from`` says."""
        return self.classes(loaded, samples, space, self.outcome(loaded, encoded, space, spec)(None))

    def outcome(self, loaded: LoadedModel, encoded: Any, space: Any, spec: Sequence[HeadScale]) -> Any:
        """A call (given the ``remote`` its trace takes, as :func:`~anchors.tracer.remote.in_one_request`
        passes it) running the batch under ``spec`` that returns the tensor its answers are read
        from: the top next token, or the generated tokens."""
        if self.config.answer_from == "first-token":
            return lambda remote: trace_batch(loaded, encoded, space, spec, remote=remote).top_token
        return lambda remote: generate_batch(loaded, encoded, space, spec, max_new_tokens=self.config.max_new_tokens,
                                             remote=remote).tokens

    def classes(self, loaded: LoadedModel, samples: Sequence[TracedSample], space: Any, outcome: Any) -> list[str]:
        """The answer classes an :meth:`outcome` tensor gives."""
        if self.config.answer_from == "first-token":
            return decide(outcome, space)
        tokenizer = loaded.adapter.tokenizer
        return [answer_from_generation(tokenizer.decode(row, skip_special_tokens=True), row, list(s.compliant_forms),
                                       list(s.competing_forms)) for row, s in zip(outcome.tolist(), samples)]

    def run_batch(self, plan: InterventionPlan, loaded: LoadedModel, chunk: Sequence[TracedSample],
                  advance: Advance) -> xr.Dataset:
        """Two requests on a remote model: the unedited batch (which samples followed decides who is
        blocked and who amplified), then every setting's traces in one session."""
        config, ks = self.config, plan.ks
        encoded, space = encode_samples(loaded.adapter, chunk)
        answers = self.answers(loaded, chunk, encoded, space)
        advance(1)
        followed = np.array([a == "compliant" for a in answers])
        instructed = np.array([s.instructed for s in chunk])
        groups = {(mode, m): np.flatnonzero(evaluated(mode, followed) & (instructed == m)).tolist()
                  for mode in MODES for m in MODALITIES}
        prepared = {key: encode_samples(loaded.adapter, [chunk[i] for i in rows]) for key, rows in groups.items() if rows}
        jobs: list[tuple[tuple[str, str], list[HeadScale]]] = []
        cells: dict[tuple, tuple[int | None, range]] = {}  # cell -> alpha column, its jobs
        for cell, mode, heads, alpha, column in self.settings(plan):
            first = len(jobs)  # a trace per group of the mode's samples (text- and vision-instructed)
            jobs.extend((key, [HeadScale(heads[key[1]], alpha, config.role)] if heads[key[1]] else [])
                        for key in prepared if key[0] == mode)
            cells[cell] = (column, range(first, len(jobs)))
        outcomes = in_one_request(loaded, [self.outcome(loaded, *prepared[key], spec) for key, spec in jobs])
        advance(self.steps(plan, chunk) - 1)
        column = {name: n for n, name in enumerate(SELECTIONS)}
        under = np.full((len(chunk), len(MODES), len(SELECTIONS), len(ks)), np.nan)
        draws = np.full((len(chunk), len(MODES), config.n_random, len(ks)), np.nan)
        swept = np.full((len(chunk), len(plan.alphas)), np.nan)
        classes = np.full((len(chunk), len(plan.alphas)), "", dtype=object)
        for cell, (alpha_column, indices) in cells.items():
            out = np.full(len(chunk), np.nan)
            for j in indices:
                rows = groups[jobs[j][0]]
                got = self.classes(loaded, [chunk[r] for r in rows], prepared[jobs[j][0]][1], outcomes[j])
                out[rows] = [a == "compliant" for a in got]
                if alpha_column is not None:
                    classes[rows, alpha_column] = got
            if cell[0] == "draw":
                draws[:, cell[1], cell[2], cell[3]] = out
            elif cell[0] == "alpha":
                swept[:, cell[1]] = out
            else:
                under[:, cell[1], column[cell[0]], cell[2]] = out
        if config.n_random:
            under[:, :, column["random"]] = draws.mean(2)
        coords = sample_coords(chunk, answers)
        return xr.Dataset(
            {"follows": (("sample", "mode", "selection", "k"), under),
             "follows_random_draw": (("sample", "mode", "draw", "k"), draws),
             "follows_alpha": (("sample", "alpha"), swept),
             "answer_alpha": (("sample", "alpha"), classes.astype(str))},
            coords={**coords, "mode": list(MODES), "selection": list(SELECTIONS), "k": list(ks),
                    "draw": np.arange(config.n_random), "alpha": list(plan.alphas)},
        )

    def finalise(self, plan: InterventionPlan, merged: xr.Dataset) -> xr.Dataset:
        """MFR per setting = mean over the evaluated samples (NaN where none was evaluated), for the
        samples instructed to follow text, vision, and all of them (``instructed_modality``)."""
        followed = merged.followed.values.astype(bool)
        instructed = merged.instructed.values
        groups = {m: instructed == m for m in MODALITIES} | {"all": np.ones(len(instructed), dtype=bool)}
        in_mode = {mode: evaluated(mode, followed) for mode in MODES}
        shared = np.zeros(plan.grid, dtype=bool)
        for layer, head in plan.heads(plan.shared):
            shared[layer, head] = True
        original = [[float(np.mean(followed[in_mode[m] & rows])) if (in_mode[m] & rows).any() else np.nan for m in MODES]
                    for rows in groups.values()]
        counts = [[int((in_mode[m] & rows).sum()) for m in MODES] for rows in groups.values()]
        evaluated_alpha = merged.answer_alpha != ""
        degenerate = (merged.answer_alpha == "degenerate").astype(float).where(evaluated_alpha)
        return merged.assign(
            mfr=by_instructed_modality(merged.follows, instructed),
            mfr_random_draw=by_instructed_modality(merged.follows_random_draw, instructed),
            mfr_alpha=by_instructed_modality(merged.follows_alpha, instructed),
            degenerate_alpha=by_instructed_modality(degenerate, instructed),
            mfr_original=(("instructed_modality", "mode"), np.array(original)),
            n_evaluated=(("instructed_modality", "mode"), np.array(counts)),
            head_score=self.ranked.score, ranking=self.ranked.ranking, ranking_layer=self.ranked.ranking_layer,
            ranking_head=self.ranked.ranking_head, shared=(("layer", "head"), shared),
        )
