"""The authors' released data (EchoDreamer/Modality-Following): one JSON file per followed modality.

Each file is a JSON list of records with ``image_id`` (a COCO 2017 id, 12 digits; not unique: one
image can carry several questions), ``task``, ``question1``–``question3``, ``answer_img``,
``answer_text``, ``answer_img_candidate_list``, ``answer_text_candidate_list`` (English and
Chinese forms; a list may be empty) and ``context``. Each ``questionN`` is the instruction
sentence, a newline, the question, a newline, then a format part; the instruction says which
modality to follow. The candidate lists plus the canonical answer are the dictionaries (no WordNet).
Records are validated like MC2's: a bad one names the file, record, id and field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .dictionaries import AnswerDictionary
from .instructions import STYLES, ModalitySample
from .records import DatasetError, RecordError, load_summary, normalise, read_json_list

QUESTION_FIELDS: tuple[str, ...] = ("question1", "question2", "question3")
COCO_2017: tuple[str, ...] = ("train2017", "val2017")
TEXT_FIELDS: tuple[str, ...] = ("task", "answer_img", "answer_text", "context")
CANDIDATES = {"answer_img": "answer_img_candidate_list", "answer_text": "answer_text_candidate_list"}


@dataclass
class AuthorsData:
    """Samples (one per record, in the file's followed modality), their dictionaries keyed by
    (canonical answer, task), and the records skipped (lenient loading) or dropped as duplicates."""

    samples: list[ModalitySample] = field(default_factory=list)
    dictionaries: dict[tuple[str, str], AnswerDictionary] = field(default_factory=dict)
    problems: list[RecordError] = field(default_factory=list)
    duplicates: list[RecordError] = field(default_factory=list)

    def summary(self) -> str:
        return load_summary(len(self.samples), self.problems, self.duplicates)


def coco_2017_image(image_root: Path, image_id: str) -> Path | None:
    for folder in COCO_2017:
        path = image_root / folder / f"{image_id}.jpg"
        if path.is_file():
            return path
    return None


def followed_modality(sentence: str) -> str | None:
    """Which modality the authors' instruction sentence asks to follow."""
    for modality in ("text", "vision"):
        if sentence.strip() == STYLES["authors"][modality]:
            return modality
    return None


def split_question(text: str) -> tuple[str, str, str] | None:
    """(instruction sentence, question, format part), or None if ``text`` does not have that form."""
    parts = text.split("\n")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        return None
    return parts[0].strip(), parts[1].strip(), parts[2]


class _Reader:
    def __init__(self, path: Path, image_root: Path, question: str, strict: bool, data: AuthorsData) -> None:
        self.path, self.image_root, self.question, self.strict, self.data = path, image_root, question, strict, data
        self.seen: dict[str, int] = {}

    def fail(self, index: int, record_id: str | None, name: str, reason: str) -> None:
        error = RecordError(str(self.path), index, record_id, name, reason)
        if self.strict:
            raise error
        self.data.problems.append(error)

    def read(self, index: int, raw: Any) -> None:
        if not isinstance(raw, dict):
            return self.fail(index, None, "record", f"must be an object, got {type(raw).__name__}")
        image_id = str(raw.get("image_id", "")).strip()
        if not image_id.isdigit() or len(image_id) > 12:
            return self.fail(index, image_id or None, "image_id", "missing, or not a COCO id of up to 12 digits")
        image_id = image_id.zfill(12)
        values: dict[str, str] = {}
        for name in TEXT_FIELDS + (self.question,):
            value = raw.get(name)
            if not isinstance(value, str) or not value.strip():
                return self.fail(index, image_id, name, "missing or empty" if value in (None, "") else
                                 f"must be a non-empty string, got {type(value).__name__}")
            values[name] = value if name == self.question else normalise(value)
        parts = split_question(values[self.question])
        if parts is None:
            return self.fail(index, image_id, self.question, "is not 'instruction\\nquestion\\nformat' (three non-empty "
                                                             "lines)")
        modality = followed_modality(parts[0])
        if modality is None:
            return self.fail(index, image_id, self.question, f"unknown instruction sentence {parts[0][:80]!r}")
        lists = {}
        for answer, name in CANDIDATES.items():
            forms = raw.get(name, [])
            if not isinstance(forms, list) or not all(isinstance(f, str) for f in forms):
                return self.fail(index, image_id, name, "must be a list of strings")
            lists[answer] = [values[answer]] + [normalise(f) for f in forms if normalise(f)]
        if values["answer_img"].lower() == values["answer_text"].lower():
            return self.fail(index, image_id, "answer_text", "identical to answer_img: no modality conflict")
        image = coco_2017_image(self.image_root, image_id)
        if image is None:
            return self.fail(index, image_id, "image_id", f"no image {image_id}.jpg under {self.image_root}/train2017 "
                                                          f"or {self.image_root}/val2017")
        content = json.dumps([image_id, values, lists], sort_keys=True)
        if content in self.seen:
            self.data.duplicates.append(RecordError(str(self.path), index, image_id, "record",
                                                    f"exact duplicate of record {self.seen[content]}"))
            return None
        self.seen[content] = index
        self._add(index, image_id, image, modality, parts, values, lists)

    def _add(self, index: int, image_id: str, image: Path, modality: str, parts: tuple[str, str, str],
             values: dict[str, str], lists: dict[str, list[str]]) -> None:
        instruction, question, format_part = parts
        compliant, competing = ("answer_text", "answer_img") if modality == "text" else ("answer_img", "answer_text")
        record_id = f"{self.path.stem}#{index}"
        self.data.samples.append(ModalitySample(
            sample_id=f"{record_id}:{modality}:authors:default", record_id=record_id, image=str(image.resolve()),
            task=values["task"], instructed=modality, style="authors", variant="default",
            segments=(("context", values["context"]), ("instruction_semantic", instruction), ("question", question),
                      ("instruction_format", format_part)),
            compliant_answer=values[compliant], competing_answer=values[competing], question=question, separator="\n"))
        for answer in (compliant, competing):
            key = (values[answer].lower(), values["task"])
            known = self.data.dictionaries.get(key)
            forms = list(known.forms) if known else [values[answer].lower()]
            forms += [f for f in lists[answer] if f.lower() not in (g.lower() for g in forms)]
            self.data.dictionaries[key] = AnswerDictionary(key[0], key[1], tuple(forms))


def load_modality_following(paths: Sequence[str | Path], image_root: str | Path, *, question: str = "question3",
                            strict: bool = True) -> AuthorsData:
    """Read the authors' files (one per followed modality) with COCO 2017 images under ``image_root``."""
    if question not in QUESTION_FIELDS:
        raise DatasetError(f"--question {question!r}: choose one of {', '.join(QUESTION_FIELDS)}")
    data = AuthorsData()
    for path in map(Path, paths):
        reader = _Reader(path, Path(image_root), question, strict, data)
        for index, raw in enumerate(read_json_list(path)):
            reader.read(index, raw)
    return data
