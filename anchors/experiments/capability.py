"""General capabilities under head blocking (Table 1): is a circuit specific, or does blocking it
break the model? Each sample of a capability task is answered with no heads blocked (``none``),
with the top-k heads of a lens ranking blocked (``targeted``) and with k random heads blocked
(``random``, several draws), for several k.

Scores per sample: VQA accuracy; multiple-choice correctness from the choice letters' logits at the
answer position; IFEval strict and loose prompt-level following (lm-eval's checkers); and for
captions the generated text (CIDEr-D, BLEU-4 and METEOR need the whole set, so they are computed
after merging) plus the perplexity of the first reference caption under the same blocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import xarray as xr
from PIL import Image

from ..datasets.capability import LETTERS, TASK_INSTRUCTIONS, CapabilityItem
from ..errors import InputError
from ..interventions.specs import HeadScale
from ..models.adapters import Adapter
from ..models.loading import LoadedModel
from ..prompts.prompt import Prompt
from ..readouts.capability import caption_scores, ifeval_follows, unknown_instructions, vqa_accuracy
from ..readouts.subspaces import Subspaces
from ..tracer.encode import EncodedBatch, encode_batch
from ..tracer.generate import generate_batch
from ..tracer.likelihood import continuation_log_likelihood
from ..tracer.trace import trace_batch
from ..results.heads import split_heads
from .base import Advance, RankedHeadsAnalysis, Resolved, draw_heads
from .configs import CapabilityConfig

CONDITIONS: tuple[str, ...] = ("none", "targeted", "random")
SCORES: dict[str, tuple[str, ...]] = {"vqa": ("vqa_accuracy",), "mcq": ("correct",),
                                      "ifeval": ("strict", "loose"), "caption": ("perplexity",)}


@dataclass(frozen=True)
class CapabilityPlan(Resolved):
    """A capability check resolved against a model: the head counts, the targeted heads per k, the
    random draws per k (softmax-attention layers only) and every run's setting."""

    ks: tuple[int, ...]
    targeted: tuple[tuple[int, ...], ...]
    random: tuple[tuple[tuple[int, ...], ...], ...]
    n_heads: int
    config: dict[str, Any]

    def settings(self) -> list[tuple[str, int, int, tuple[int, ...]]]:
        """(condition, k, draw, flat head indices) of every run; ``none`` once."""
        out: list[tuple[str, int, int, tuple[int, ...]]] = [("none", self.ks[0], 0, ())]
        for i, k in enumerate(self.ks):
            out.append(("targeted", k, 0, self.targeted[i]))
            out += [("random", k, d, heads) for d, heads in enumerate(self.random[i])]
        return out

    def as_config(self) -> dict[str, Any]:
        return dict(self.config)


class CapabilityAnalysis(RankedHeadsAnalysis[CapabilityItem]):
    """Needs a head ranking: the lens result (``lens``) whose top heads are the targeted ones.

    >>> anchors.CapabilityConfig(task="mcq", ks=(1, 2)).task
    'mcq'

    Run it with ``anchors.run(anchors.CapabilityAnalysis(lens, task="vqa"), model, "vqa.jsonl")``
    (``anchors capability`` on the command line; the how-to guide on capability checks)."""

    experiment = "capability"
    Config = CapabilityConfig
    unit = "settings"

    def items(self, samples: Any) -> list[CapabilityItem]:
        items = list(samples)
        wrong = [i.sample_id for i in items if i.task != self.config.task]
        if wrong:
            raise InputError(f"sample {wrong[0]} is a {items[0].task} item, but the task is {self.config.task}")
        unknown = sorted({u for i in items for u in unknown_instructions(i.instruction_ids)})
        if unknown:
            raise InputError(f"IFEval instruction ids unknown to lm-eval's checkers: {', '.join(unknown)}")
        return items

    def resolve(self, adapter: Adapter, items: Sequence[CapabilityItem] = ()) -> CapabilityPlan:
        self.check_ranking(adapter)
        config = self.config
        config.check()
        ks = self.head_counts(adapter, config.ks)
        order, pool = self.softmax_heads(adapter, config.modality)
        rng = np.random.default_rng(config.seed)
        targeted = tuple(tuple(order[:k]) for k in ks)
        random = tuple(tuple(tuple(draw_heads(rng, pool, k)) for _ in range(config.n_random)) for k in ks)
        resolved = {**{f: getattr(config, f) for f in ("task", "modality", "n_random", "seed", "scope", "max_new_tokens")},
                    "ks": list(ks), "targeted_heads": {str(k): list(v) for k, v in zip(ks, targeted)}}
        return CapabilityPlan(ks, targeted, random, adapter.shape.n_heads, resolved)

    def prompts(self, item: CapabilityItem) -> list[Prompt]:
        return [self.prompt(item)]

    def samples_of(self, item: CapabilityItem) -> list[Any]:
        return [item]

    def prompt(self, item: CapabilityItem) -> Prompt:
        """The item as a prompt: its question (with lettered choices for mcq) as ``question``, the
        task's instruction (an IFEval prompt is all instruction) as ``instruction_format``."""
        if item.task == "ifeval":
            segments: tuple = (("instruction_format", item.question),)
        else:
            question = item.question + "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(item.choices))
            segments = ((("question", question),) if question.strip() else ()) + (
                ("instruction_format", TASK_INSTRUCTIONS[item.task]),)
        image = Image.open(item.image).convert("RGB") if item.image else None
        return Prompt(item.sample_id, segments, image=image)

    def steps(self, plan: CapabilityPlan, chunk: Sequence[CapabilityItem]) -> int:
        return 1 + len(plan.ks) * (1 + self.config.n_random)

    def _blocking(self, plan: CapabilityPlan, flat: Sequence[int]) -> list[HeadScale]:
        if not flat:
            return []
        everywhere = self.config.scope == "all"
        return [HeadScale(split_heads(flat, plan.n_heads), 0.0, role="all" if everywhere else "instruction",
                          steps="all" if everywhere else "prefill")]

    def run_batch(self, plan: CapabilityPlan, loaded: LoadedModel, chunk: Sequence[CapabilityItem],
                  advance: Advance) -> xr.Dataset:
        prompts = [self.prompt(item) for item in chunk]
        text_only = all(p.image is None for p in prompts)
        encoded = encode_batch(loaded.adapter, prompts, allow_text_only=text_only)
        # captions: each prompt alone with its first reference's ids, for the likelihood traces
        tokenizer = loaded.adapter.tokenizer
        references = [(encode_batch(loaded.adapter, [prompt]), tokenizer.encode(" " + item.references[0], add_special_tokens=False))
                      for prompt, item in zip(prompts, chunk)] if self.config.task == "caption" else []
        shape = (len(chunk), len(CONDITIONS), len(plan.ks), self.config.n_random)
        outputs = np.full(shape, "", dtype=object)
        scores = {name: np.full(shape, np.nan) for name in SCORES[self.config.task]}
        for condition, k, draw, flat in plan.settings():
            spec = self._blocking(plan, flat)
            answers, values = self._answer(loaded, chunk, encoded, references, spec)
            where = (slice(None), CONDITIONS.index(condition), slice(None) if condition == "none" else plan.ks.index(k),
                     slice(0, 1) if condition == "none" else draw)
            column = np.array(answers, dtype=object)
            outputs[where] = column[:, None] if condition == "none" else column
            for name, value in values.items():
                scores[name][where] = np.asarray(value)[:, None] if condition == "none" else value
            advance(1)
        dims = ("sample", "condition", "k", "draw")
        return xr.Dataset(
            {"output": (dims, outputs), **{name: (dims, value) for name, value in scores.items()},
             **({"references": ("sample", ["\n".join(i.references) for i in chunk])} if self.config.task == "caption" else {})},
            coords={"sample": [i.sample_id for i in chunk], "condition": list(CONDITIONS), "k": list(plan.ks),
                    "draw": np.arange(self.config.n_random)},
        )

    def _answer(self, loaded: LoadedModel, chunk: Sequence[CapabilityItem], encoded: EncodedBatch,
                references: Sequence[tuple[EncodedBatch, list[int]]], spec: list[HeadScale]
                ) -> tuple[list[str], dict[str, list[float]]]:
        """Each item's output under ``spec`` and its scores."""
        task, tokenizer = self.config.task, loaded.adapter.tokenizer
        if task == "mcq":
            letters = [_letter_ids(tokenizer, len(item.choices)) for item in chunk]
            right = [ids[LETTERS.index(item.answer)] for ids, item in zip(letters, chunk)]
            wrong = [[t for j, group in enumerate(ids) if j != LETTERS.index(item.answer) for t in group]
                     for ids, item in zip(letters, chunk)]
            space = Subspaces.from_ids(encoded.sample_ids, right, wrong)
            logits, union = trace_batch(loaded, encoded, space, spec).answer_logits, space.union.tolist()
            chosen = [LETTERS[int(np.argmax([max(float(logits[b, union.index(t)]) for t in group) for group in ids]))]
                      for b, ids in enumerate(letters)]
            return chosen, {"correct": [float(c == item.answer) for c, item in zip(chosen, chunk)]}
        space = Subspaces.from_ids(encoded.sample_ids, [[0]] * len(chunk), [[1]] * len(chunk))
        tokens = generate_batch(loaded, encoded, space, spec, max_new_tokens=self.config.max_new_tokens).tokens
        texts = [tokenizer.decode(row, skip_special_tokens=True).strip() for row in tokens.tolist()]
        if task == "vqa":
            return texts, {"vqa_accuracy": [vqa_accuracy(t, item.references) for t, item in zip(texts, chunk)]}
        if task == "ifeval":
            follows = [ifeval_follows(item.question, item.instruction_ids, item.instruction_kwargs, t)
                       for t, item in zip(texts, chunk)]
            return texts, {"strict": [float(s) for s, _ in follows], "loose": [float(l) for _, l in follows]}
        perplexity = [float(np.exp(-continuation_log_likelihood(loaded, one, ids, spec).mean())) for one, ids in references]
        return texts, {"perplexity": perplexity}

    def finalise(self, plan: CapabilityPlan, merged: xr.Dataset) -> xr.Dataset:
        if self.config.task != "caption":
            return merged
        references = {s: str(r).split("\n") for s, r in zip(merged.sample.values, merged.references.values)}
        metrics = {name: np.full(merged.output.shape, np.nan) for name in ("cider_d", "bleu_4", "meteor")}
        cells, columns = [], []
        for condition, k, draw, _ in plan.settings():  # every cell that ran ("none" once: it is the same at every k)
            none = condition == "none"
            cells.append(((slice(None), CONDITIONS.index(condition), slice(None) if none else plan.ks.index(k), draw), none))
            column = merged.output.values[:, CONDITIONS.index(condition), 0 if none else plan.ks.index(k), draw]
            columns.append(dict(zip(merged.sample.values, [c or "." for c in column])))
        for (cell, none), scored in zip(cells, caption_scores(columns, references)):  # one JVM for every cell
            for name, values in scored.items():
                metrics[name][cell] = np.asarray(values)[:, None] if none else values
        for name, values in metrics.items():
            merged[name] = (("sample", "condition", "k", "draw"), values)
        return merged


def _letter_ids(tokenizer: Any, n: int) -> list[list[int]]:
    """For each of the first ``n`` letters, the single-token spellings (``A``, `` A``) it has."""
    out = []
    for letter in LETTERS[:n]:
        ids = {tuple(tokenizer.encode(form, add_special_tokens=False)) for form in (letter, " " + letter)}
        single = sorted(i[0] for i in ids if len(i) == 1)
        if not single:
            raise InputError(f"choice letter {letter} is not a single token of this tokenizer")
        out.append(single)
    return out
