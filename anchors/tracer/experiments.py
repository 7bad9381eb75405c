"""The paper's experiments, each returning a labelled ``xarray.Dataset``.

Samples go through in padded batches of ``batch_size``; each batch is one trace per
intervention setting, and only small tensors leave a trace, so memory is bounded by the batch.
``on_batch(done, total)`` is called after every batch (progress bars hook in there).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
import xarray as xr

from ..interventions.specs import HeadScale, Knockout
from ..readouts.metrics import (
    compliant_probability, decide, ldar, margin, modality_following_ratio, nssd, synchronisation_rate, topk_readout,
)
from .loading import LoadedModel
from .results import provenance
from .run import SITES, SUBSPACES, subspace_logits, trace_batch
from .samples import MODALITIES, TracedSample, batches

Progress = Callable[[int, int], None] | None

DEFAULT_PATHWAYS: dict[str, tuple[str, str]] = {
    "visual->instruction": ("visual", "instruction"),
    "context->instruction": ("context", "instruction"),
    "visual->generated": ("visual", "generated"),
    "context->generated": ("context", "generated"),
    "instruction->generated": ("instruction", "generated"),
    "visual->context": ("visual", "context"),
}
OUTCOMES: tuple[str, ...] = ("followed", "failed", "all")


def _sample_coords(samples: Sequence[TracedSample], answers: Sequence[str]) -> dict[str, tuple]:
    return {
        "sample": ("sample", [s.sample_id for s in samples]),
        "task": ("sample", [s.task for s in samples]),
        "instructed": ("sample", [s.instructed for s in samples]),
        "answer": ("sample", list(answers)),
        "followed": ("sample", [a == "compliant" for a in answers]),
    }


def _label(role: str | tuple[str, ...]) -> str:
    return role if isinstance(role, str) else "+".join(role)


def _tick(on_batch: Progress, done: int, total: int) -> None:
    if on_batch is not None:
        on_batch(done, total)


def _layers(loaded: LoadedModel, layers: Sequence[int] | None) -> list[int]:
    n = loaded.adapter.shape.n_layers
    chosen = list(range(n)) if layers is None else [int(l) for l in layers]
    bad = [l for l in chosen if not 0 <= l < n]
    if bad:
        raise ValueError(f"layers {bad} outside 0…{n - 1}")
    return chosen


def knockout_profile(
    loaded: LoadedModel,
    samples: Sequence[TracedSample],
    *,
    pathways: Mapping[str, tuple[str, str]] | None = None,
    windows: Sequence[int] = (9,),
    layers: Sequence[int] | None = None,
    batch_size: int = 8,
    on_batch: Progress = None,
) -> xr.Dataset:
    """NSSD (Eq 4) and the compliant probability for every (pathway, window, layer) knockout (§3.2,
    Fig 2; a list of windows gives the sensitivity sweep of App C.1)."""
    pathways = dict(pathways or DEFAULT_PATHWAYS)
    chosen = _layers(loaded, layers)
    shape = (len(samples), len(pathways), len(windows), len(chosen))
    divergence, p_after = np.full(shape, np.nan), np.full(shape, np.nan)
    p_before, answers = np.full(len(samples), np.nan), []
    for start, chunk, batch, space in batches(loaded.adapter, samples, batch_size):
        rows = slice(start, start + len(chunk))
        base = trace_batch(loaded, batch, space)
        p_before[rows] = compliant_probability(base["answer_logits"], space).numpy()
        answers += decide(base["top_token"], space)
        for p, (source, target) in enumerate(pathways.values()):
            for w, window in enumerate(windows):
                for l, layer in enumerate(chosen):
                    cut = trace_batch(loaded, batch, space, [Knockout(source, target, layer, window)])
                    divergence[rows, p, w, l] = nssd(base["answer_logits"], cut["answer_logits"], space).numpy()
                    p_after[rows, p, w, l] = compliant_probability(cut["answer_logits"], space).numpy()
        _tick(on_batch, start + len(chunk), len(samples))
    dims = ("sample", "pathway", "window", "layer")
    config = {"pathways": {k: [_label(s), _label(t)] for k, (s, t) in pathways.items()}, "windows": list(windows), "layers": chosen, "batch_size": batch_size}
    if len(windows) == 1:
        config["window"] = int(windows[0])
    return xr.Dataset(
        {
            "nssd": (dims, divergence),
            "p_compliant": (dims, p_after),
            "p_compliant_base": ("sample", p_before),
            "source": ("pathway", [_label(s) for s, _ in pathways.values()]),
            "target": ("pathway", [_label(t) for _, t in pathways.values()]),
        },
        coords={**_sample_coords(samples, answers), "pathway": list(pathways), "window": list(windows), "layer": chosen},
        attrs=provenance(loaded, samples, "knockout_profile", config),
    )


def _outcome_masks(followed: np.ndarray) -> dict[str, np.ndarray]:
    return {"followed": followed, "failed": ~followed, "all": np.ones_like(followed)}


def _rate_by_outcome(rate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], a: torch.Tensor, b: torch.Tensor,
                     followed: np.ndarray) -> np.ndarray:
    out = np.full((len(OUTCOMES), a.shape[1]), np.nan)
    for o, selected in enumerate(_outcome_masks(followed).values()):
        if selected.any():
            index = torch.from_numpy(np.flatnonzero(selected))
            out[o] = rate(a[index], b[index]).numpy()
    return out


def lens_profile(
    loaded: LoadedModel,
    samples: Sequence[TracedSample],
    *,
    top_k: int = 5,
    heads: bool = True,
    readout_role: str | tuple[str, ...] = "instruction",
    batch_size: int = 8,
    on_batch: Progress = None,
) -> xr.Dataset:
    """Logit-lens readouts at instruction tokens (``readout_role``; Eq 1, 5) before/after attention/after MLP of every
    layer, the attention and MLP logit-difference attributions (Eq 7–8), per-head attributions
    (Eq 9), LDAR (Eq 6) and the instruction-vs-answer-position synchronisation rate, for followed
    and failed samples."""
    readouts, generated, head_scores, final_margins, answers = [], [], [], [], []
    for start, chunk, batch, space in batches(loaded.adapter, samples, batch_size):
        out = trace_batch(loaded, batch, space, lens=True, heads=heads, readout_role=readout_role)
        valid = out["valid"]
        readouts.append(topk_readout(out["readout"], valid, top_k))  # (B, L, site, 2)
        generated.append(out["readout_generated"])
        final_margins.append(margin(subspace_logits(out["answer_logits"], space)))
        answers += decide(out["top_token"], space)
        if heads:
            per_head = topk_readout(out["head_readout"].transpose(2, 3), valid, top_k)  # (B, L, H, 2)
            head_scores.append(margin(per_head) - margin(readouts[-1][:, :, 0])[..., None])
        _tick(on_batch, start + len(chunk), len(samples))
    readout, readout_generated = torch.cat(readouts), torch.cat(generated)
    final_margin = torch.cat(final_margins)
    post = SITES.index("post")
    pre, mid = readout[:, :, SITES.index("pre")], readout[:, :, SITES.index("mid")]
    attn, mlp = mid - pre, readout[:, :, post] - mid
    data = {
        "readout": (("sample", "layer", "site", "subspace"), readout.numpy()),
        "readout_generated": (("sample", "layer", "site", "subspace"), readout_generated.numpy()),
        "margin": (("sample", "layer", "site"), margin(readout).numpy()),
        "attn_attribution": (("sample", "layer", "subspace"), attn.numpy()),
        "mlp_attribution": (("sample", "layer", "subspace"), mlp.numpy()),
        "attn_attribution_margin": (("sample", "layer"), margin(attn).numpy()),
        "mlp_attribution_margin": (("sample", "layer"), margin(mlp).numpy()),
        "final_margin": ("sample", final_margin.numpy()),
    }
    coords = {
        **_sample_coords(samples, answers),
        "layer": list(range(loaded.adapter.shape.n_layers)),
        "site": list(SITES),
        "subspace": list(SUBSPACES),
        "outcome": list(OUTCOMES),
    }
    if heads:
        data["head_attribution"] = (("sample", "layer", "head"), torch.cat(head_scores).numpy())
        coords["head"] = list(range(loaded.adapter.shape.n_heads))
    config = {"top_k": top_k, "heads": heads, "batch_size": batch_size, "readout_role": _label(readout_role)}
    return with_lens_aggregates(xr.Dataset(data, coords=coords, attrs=provenance(loaded, samples, "lens_profile", config)))


def with_lens_aggregates(ds: xr.Dataset) -> xr.Dataset:
    """(Re)compute the sample aggregates of a lens result from its per-sample variables: LDAR (Eq 6)
    and the synchronisation rate, per outcome (followed, failed, all) and layer (post site)."""
    instruction = torch.from_numpy(ds.margin.sel(site="post").transpose("sample", "layer").values)
    generated_readout = ds.readout_generated.sel(site="post").transpose("sample", "layer", "subspace").values
    generated = margin(torch.from_numpy(generated_readout))
    final = torch.from_numpy(ds.final_margin.values)
    followed = ds.followed.values.astype(bool)
    out = ds.drop_vars(["ldar", "sync_rate"], errors="ignore")
    out["ldar"] = (("outcome", "layer"), _rate_by_outcome(ldar, instruction, final, followed))
    out["sync_rate"] = (("outcome", "layer"), _rate_by_outcome(synchronisation_rate, instruction, generated, followed))
    return out


def rank_heads(lens: xr.Dataset) -> xr.Dataset:
    """Rank heads per instructed modality by their mean margin attribution (Eq 9) over followed
    samples (all samples of that modality where none followed). Returns ``score`` (modality, layer,
    head) and ``ranking`` (modality, rank) of flat head indices ``layer * n_heads + head``."""
    if "head_attribution" not in lens:
        raise ValueError("the lens result has no head_attribution: run lens_profile with heads=True")
    scores = []
    for modality in MODALITIES:
        of_modality = lens.head_attribution.where(lens.instructed == modality, drop=True)
        followed = of_modality.where(of_modality.followed, drop=True)
        chosen = followed if followed.sizes["sample"] else of_modality
        scores.append(chosen.mean("sample") if chosen.sizes["sample"] else xr.zeros_like(lens.head_attribution.isel(sample=0)))
    score = xr.concat(scores, dim=xr.DataArray(list(MODALITIES), dims="modality", name="modality"))
    flat = score.stack(flat=("layer", "head")).values  # (modality, layer*head), layer-major
    ranking = np.argsort(-flat, axis=1, kind="stable")
    return xr.Dataset(
        {"score": score.drop_vars([c for c in score.coords if c not in ("modality", "layer", "head")]),
         "ranking": (("modality", "rank"), ranking)},
        coords={"rank": np.arange(ranking.shape[1])},
    )


def _flat_to_heads(flat: Sequence[int], n_heads: int) -> tuple[tuple[int, int], ...]:
    return tuple((int(i) // n_heads, int(i) % n_heads) for i in flat)


def _following_ratio(
    loaded: LoadedModel, samples: Sequence[TracedSample], heads_for: Mapping[str, tuple[tuple[int, int], ...]],
    alpha: float, role: str, batch_size: int,
) -> float:
    answers: list[str] = []
    for modality in MODALITIES:
        group = [s for s in samples if s.instructed == modality]
        spec = [HeadScale(heads_for[modality], alpha, role)] if heads_for.get(modality) else []
        for _, _, batch, space in batches(loaded.adapter, group, batch_size):
            answers += decide(trace_batch(loaded, batch, space, spec)["top_token"], space)
    return modality_following_ratio(answers) if answers else float("nan")


def head_intervention(
    loaded: LoadedModel,
    samples: Sequence[TracedSample],
    lens: xr.Dataset,
    *,
    ks: Sequence[int] = (1, 2, 4, 8),
    amplify_alpha: float = 2.0,
    alphas: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
    alpha_k: int | None = None,
    n_random: int = 5,
    shared_top: int | None = None,
    role: str = "instruction",
    seed: int = 0,
    batch_size: int = 8,
    on_batch: Progress = None,
) -> xr.Dataset:
    """§4.2: block (alpha = 0) the top-k heads on followed samples and amplify them on failed
    samples, versus random-k heads (``n_random`` seeded draws) and modality-shared heads (those in
    the top ``shared_top`` of both the text- and the vision-following ranking); plus the MFR of
    amplifying the top ``alpha_k`` heads over ``alphas`` (Table 4)."""
    shape = loaded.adapter.shape
    total_heads = shape.n_layers * shape.n_heads
    if any(k < 1 or k > total_heads for k in ks):
        raise ValueError(f"every k must be in 1…{total_heads}, got {list(ks)}")
    ranked = rank_heads(lens)
    order = {m: ranked.ranking.sel(modality=m).values for m in MODALITIES}
    shared_top = shared_top or max(ks)
    top_sets = [set(order[m][:shared_top].tolist()) for m in MODALITIES]
    position = {m: {int(h): r for r, h in enumerate(order[m])} for m in MODALITIES}
    shared = sorted(set.intersection(*top_sets), key=lambda h: sum(position[m][h] for m in MODALITIES))
    baseline = {}
    answers: list[str] = []
    for _, _, batch, space in batches(loaded.adapter, samples, batch_size):
        answers += decide(trace_batch(loaded, batch, space)["top_token"], space)
    followed = [s for s, a in zip(samples, answers) if a == "compliant"]
    failed = [s for s, a in zip(samples, answers) if a != "compliant"]
    modes = {"block": (followed, 0.0), "amplify": (failed, amplify_alpha)}
    selections = ("targeted", "random", "shared")
    mfr = np.full((len(modes), len(selections), len(ks)), np.nan)
    draws = np.full((len(modes), n_random, len(ks)), np.nan)
    rng = np.random.default_rng(seed)
    random_sets = [[rng.choice(total_heads, size=k, replace=False) for k in ks] for _ in range(n_random)]
    steps, done = len(modes) * len(ks) * (2 + n_random) + len(alphas), 0
    for m, (group, alpha) in enumerate(modes.values()):
        baseline[m] = _following_ratio(loaded, group, {}, 1.0, role, batch_size)
        for i, k in enumerate(ks):
            targeted = {mod: _flat_to_heads(order[mod][:k], shape.n_heads) for mod in MODALITIES}
            mfr[m, 0, i] = _following_ratio(loaded, group, targeted, alpha, role, batch_size)
            for d in range(n_random):
                chosen = _flat_to_heads(random_sets[d][i], shape.n_heads)
                draws[m, d, i] = _following_ratio(loaded, group, {mod: chosen for mod in MODALITIES}, alpha, role, batch_size)
            mfr[m, 1, i] = draws[m, :, i].mean()
            if shared:
                chosen = _flat_to_heads(shared[:k], shape.n_heads)
                mfr[m, 2, i] = _following_ratio(loaded, group, {mod: chosen for mod in MODALITIES}, alpha, role, batch_size)
            done += 2 + n_random
            _tick(on_batch, done, steps)
    alpha_k = alpha_k or max(ks)
    top = {mod: _flat_to_heads(order[mod][:alpha_k], shape.n_heads) for mod in MODALITIES}
    sweep = np.full(len(alphas), np.nan)
    for a, alpha in enumerate(alphas):
        sweep[a] = _following_ratio(loaded, failed, top, alpha, role, batch_size)
        _tick(on_batch, done + a + 1, steps)
    shared_mask = np.zeros((shape.n_layers, shape.n_heads), dtype=bool)
    for h in shared:
        shared_mask[h // shape.n_heads, h % shape.n_heads] = True
    config = {"ks": list(ks), "amplify_alpha": amplify_alpha, "alphas": list(alphas), "alpha_k": alpha_k,
              "n_random": n_random, "shared_top": shared_top, "role": role, "seed": seed, "batch_size": batch_size}
    return xr.Dataset(
        {
            "mfr": (("mode", "selection", "k"), mfr),
            "mfr_random_draw": (("mode", "draw", "k"), draws),
            "mfr_original": ("mode", np.array([baseline[0], baseline[1]])),
            "n_evaluated": ("mode", np.array([len(followed), len(failed)])),
            "mfr_alpha": ("alpha", sweep),
            "head_score": ranked.score,
            "ranking": ranked.ranking,
            "shared": (("layer", "head"), shared_mask),
        },
        coords={"mode": list(modes), "selection": list(selections), "k": list(ks), "draw": np.arange(n_random),
                "alpha": list(alphas), "layer": np.arange(shape.n_layers), "head": np.arange(shape.n_heads),
                "modality": list(MODALITIES)},
        attrs=provenance(loaded, samples, "head_intervention", config),
    )


CONTROL_TARGETS: dict[str, tuple[str, ...]] = {
    "semantic": ("instruction_semantic",),
    "format": ("instruction_format", "system"),
}


def position_controls(
    loaded: LoadedModel,
    variants: Mapping[str, Sequence[TracedSample]],
    *,
    layers: Sequence[int] | None = None,
    window: int = 9,
    batch_size: int = 8,
    on_batch: Progress = None,
) -> xr.Dataset:
    """Fig 3a and App C.2: cut attention from the modality cues (visual, context) to the semantic
    instruction part versus to the format part (plus any inserted system prompt, which counts as
    format), for each prompt variant (default, swapped order, system prompt before/between)."""
    names = list(variants)
    if not names:
        raise ValueError("position_controls needs at least one variant")
    ids = [s.sample_id for s in variants[names[0]]]
    for name in names[1:]:
        if [s.sample_id for s in variants[name]] != ids:
            raise ValueError(f"variant {name!r} must hold the same samples, in the same order, as {names[0]!r}")
    profiles = []
    for v, name in enumerate(names):
        profile = knockout_profile(
            loaded, variants[name],
            pathways={target: (("visual", "context"), roles) for target, roles in CONTROL_TARGETS.items()},
            windows=(window,), layers=layers, batch_size=batch_size,
        )
        profile = profile.isel(window=0, drop=True).drop_vars(["source", "target"]).rename(pathway="target")
        # the model's answer can differ between variants: keep it per variant
        profiles.append(profile.reset_coords(["answer", "followed"]).drop_vars(["task", "instructed"]))
        _tick(on_batch, v + 1, len(names))
    merged = xr.concat(profiles, dim=xr.DataArray(names, dims="variant", name="variant"), data_vars="all",
                       coords="minimal", compat="override")
    merged = merged.assign_coords(task=("sample", [s.task for s in variants[names[0]]]),
                                  instructed=("sample", [s.instructed for s in variants[names[0]]]))
    merged["target_roles"] = ("target", [_label(roles) for roles in CONTROL_TARGETS.values()])
    config = {"variants": names, "window": window, "layers": merged.layer.values.tolist(), "batch_size": batch_size,
              "targets": {k: list(v) for k, v in CONTROL_TARGETS.items()}}
    merged.attrs = provenance(loaded, variants[names[0]], "position_controls", config)
    return merged
