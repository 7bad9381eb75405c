"""A data folder made by ``anchors data build`` (``samples.jsonl`` + ``dictionaries.jsonl``): opened
and checked before any model loads, then turned into traced samples with a model's tokenizer."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..prompts.prompt import Prompt, TracedSample
from .build import dictionaries_for, load_samples, sample_prompt, save_samples, to_traced, tokenise
from .dictionaries import AnswerDictionary, Verifier, load_dictionaries, load_extra_forms, save_dictionaries
from .instructions import ModalitySample, build_samples, rearranged
from .modality_following import load_modality_following
from .records import DatasetError, load_jsonl, load_mc2
from .regions import coco_regions, side_file_regions, with_regions
from .subset import Subset

SAMPLES_FILE, DICTIONARIES_FILE = "samples.jsonl", "dictionaries.jsonl"


def stratum(sample: ModalitySample) -> tuple[str, str]:
    """The stratum a fraction is drawn within: task × instructed modality."""
    return sample.task, sample.instructed


@dataclass
class DataFolder:
    path: Path
    samples: list[ModalitySample]
    dictionaries: dict[tuple[str, str], AnswerDictionary]

    @classmethod
    def open(cls, path: str | Path) -> "DataFolder":
        """Read both files, naming the folder and the missing or bad file on failure."""
        path = Path(path)
        if not path.exists():
            raise DatasetError(f"--data {path}: no such folder; give the folder made by 'anchors data build' (holding "
                               f"{SAMPLES_FILE} and {DICTIONARIES_FILE})")
        if path.is_file():
            raise DatasetError(f"--data {path}: is a file; give the folder made by 'anchors data build' (holding "
                               f"{SAMPLES_FILE} and {DICTIONARIES_FILE})")
        for name in (SAMPLES_FILE, DICTIONARIES_FILE):
            if not (path / name).is_file():
                raise DatasetError(f"--data {path}: missing {name} (build it with 'anchors data build')")
        return cls(path, load_samples(path / SAMPLES_FILE), load_dictionaries(path / DICTIONARIES_FILE))

    def prompt(self, sample_id: str) -> Prompt:
        """Sample ``sample_id``'s prompt with its image; an unknown id is refused naming close matches.

        >>> folder = DataFolder.open(data)
        >>> folder.prompt("in0").segments[0][0], folder.prompt("in0").image.size[0] > 0
        ('context', True)
        >>> folder.prompt("inO")
        Traceback (most recent call last):
        anchors.datasets.records.DatasetError: --data ...: no sample 'inO'; close matches: in0, in1 (ids as in samples.jsonl)"""
        found = next((s for s in self.samples if s.sample_id == sample_id), None)
        if found is None:
            ids = [s.sample_id for s in self.samples]
            close = sorted(difflib.get_close_matches(sample_id, ids, n=3, cutoff=0.5))
            raise DatasetError(f"--data {self.path}: no sample {sample_id!r}; "
                               + (f"close matches: {', '.join(close)}" if close else f"the first ids: {', '.join(ids[:3])}")
                               + f" (ids as in {SAMPLES_FILE})")
        return sample_prompt(found)

    def _tokenised(self, samples: Sequence[ModalitySample], tokenizer: Any,
                   log: Callable[[str], None]) -> list[TracedSample]:
        kept, coverage = tokenise(samples, self.dictionaries, tokenizer)
        log(f"dictionaries: {coverage.summary()}")
        if not kept:
            raise DatasetError(f"--data {self.path}: no sample left after the dictionary coverage filter ({coverage.summary()})")
        return to_traced(kept)

    def traced(self, tokenizer: Any, *, variant: str = "default", subset: Subset = Subset(),
               log: Callable[[str], None] = lambda message: None) -> list[TracedSample]:
        """The ``variant`` samples (all samples if the data has none of it), the ``subset`` of them."""
        chosen = [s for s in self.samples if s.variant == variant] or self.samples
        return self._tokenised(subset.take(chosen, stratum), tokenizer, log)

    def variants(self, tokenizer: Any, names: Sequence[str], *, subset: Subset = Subset(),
                 log: Callable[[str], None] = lambda message: None) -> dict[str, list[TracedSample]]:
        """The same samples in every prompt variant, aligned by (record, instructed modality, style)
        and given one id; ``subset`` draws among such aligned samples, and those that fail the
        coverage filter in any variant are left out of all."""
        grouped: dict[str, dict[str, ModalitySample]] = {}
        for name in names:
            grouped[name] = {f"{s.record_id}:{s.instructed}:{s.style}": s for s in self.samples if s.variant == name}
            if not grouped[name]:
                raise DatasetError(f"--data {self.path}: no '{name}' samples (build it with --variants {name})")
        aligned = subset.take([sid for sid in grouped[names[0]] if all(sid in g for g in grouped.values())],
                              lambda sid: stratum(grouped[names[0]][sid]))
        if not aligned:
            raise DatasetError(f"--data {self.path}: no sample exists in every variant of {', '.join(names)}")
        traced = {name: {s.sample_id: s for s in self._tokenised(
            [dataclasses.replace(grouped[name][sid], sample_id=sid) for sid in aligned], tokenizer, log)} for name in names}
        kept = [sid for sid in aligned if all(sid in t for t in traced.values())]
        return {name: [t[sid] for sid in kept] for name, t in traced.items()}


def build_folder(out: str | Path, *, mc2: str | None = None, images: str | None = None, jsonl: str | None = None,
                 modality_following: Sequence[str] = (), question: str = "question3",
                 tasks: Sequence[str] | None = None, styles: tuple[str, ...] = ("default",),
                 variants: tuple[str, ...] = ("default",), extra_forms: str | None = None, strict: bool = True,
                 verifier: Verifier | None = None, overwrite: bool = False, dictionaries: str = "wordnet",
                 regions: str | None = None, coco_instances: str | None = None,
                 log: Callable[[str], None] = lambda message: None) -> list[tuple[str, str]]:
    """Read MC2 (with its COCO 2014 ``images`` root), JSONL records, or the authors' Modality-Following
    files (with a COCO 2017 ``images`` root; their own instructions and dictionaries, ``question``
    choosing the format part), make the samples in every style and variant, build the dictionaries
    (from ``dictionaries``: WordNet, offline, or the answers and ``extra_forms`` alone with
    ``"answers-only"``; the authors' files bring their own) and write the data folder. Region boxes
    come from the records, a ``regions`` side file or COCO's ``coco_instances``
    (:mod:`~anchors.datasets.regions`); records left without one are logged. Returns summary rows;
    bad records are logged (lenient) or raised (strict)."""
    out = Path(out)
    if (mc2 or modality_following) and not images:
        raise DatasetError("--mc2 and --modality-following need --images DIR (the COCO root: train2014/ and val2014/ "
                           "for MC2, train2017/ and val2017/ for the authors' files)")
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out}: is a file; give a folder")
    if (out / SAMPLES_FILE).exists() and not overwrite:
        raise DatasetError(f"--out {out}: already holds a data set; use --overwrite to replace it")
    region_rows: list[tuple[str, str]] = []
    if modality_following:
        if regions or coco_instances:
            raise DatasetError("--regions and --coco-instances apply to --mc2 and --jsonl records")
        authors = load_modality_following(modality_following, images, question=question, strict=strict)
        samples, built, report = authors.samples, authors.dictionaries, authors
        samples = [rearranged(s, v) if v != "default" else s for s in samples for v in variants]
    else:
        report = load_mc2(mc2, images, strict=strict) if mc2 else load_jsonl(jsonl, strict=strict, tasks=tasks)
        records, region_rows = _regions(report.records, regions, coco_instances, log)
        samples = build_samples(records, styles=styles, variants=variants) if records else []
        built = {}
    if not samples:
        raise DatasetError(f"{mc2 or jsonl or ', '.join(modality_following)}: no usable record ({report.summary()}); "
                           "nothing to build")
    for problem in report.problems:
        log(f"skipped: {problem}")
    for duplicate in report.duplicates:
        log(f"dropped: {duplicate}")
    built = built or dictionaries_for(samples, verifier=verifier, source=dictionaries,
                                      extra_forms=load_extra_forms(extra_forms) if extra_forms else None)
    for entry in built.values():
        if entry.dropped:
            log(f"dictionary {entry.canonical!r} ({entry.task}): dropped " + ", ".join(
                f"{form!r} ({reason})" for form, reason in entry.dropped))
    out.mkdir(parents=True, exist_ok=True)
    save_samples(out / SAMPLES_FILE, samples)
    save_dictionaries(out / DICTIONARIES_FILE, built.values())
    dropped = sum(len(entry.dropped) for entry in built.values())
    return [("records", report.summary()), ("samples", str(len(samples))),
            ("dictionaries", f"{len(built)} ({dropped} candidate forms dropped, listed in the log and in "
                             f"{DICTIONARIES_FILE})")] + region_rows


def _regions(records: list, regions: str | None, coco_instances: str | None,
             log: Callable[[str], None]) -> tuple[list, list[tuple[str, str]]]:
    """Records with the boxes of a side file or of COCO's annotations, and a summary row listing
    how many have one; each record left without one is logged with why."""
    if not (regions or coco_instances) or not records:
        return records, []
    boxes, unmatched = side_file_regions(regions, records) if regions else coco_regions(coco_instances, records)
    for record_id, why in unmatched:
        log(f"no region for record {record_id}: {why}")
    return with_regions(records, boxes), [("regions", f"{len(boxes)} of {len(records)} records "
                                                      f"({len(unmatched)} without one, listed in the log)")]
