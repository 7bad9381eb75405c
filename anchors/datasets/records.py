"""Conflict records: the published MC2 file (``evaluate_final.json``) or users' own JSONL.

Every record is validated when loaded. A bad record gives a :class:`RecordError` naming the
file, the record index and id, and the field. ``strict=True`` raises on the first one;
``strict=False`` skips bad records and returns all problems in the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from PIL import Image, UnidentifiedImageError

from ..errors import InputError
from ..prompts.prompt import box_problem

MC2_TASKS: tuple[str, ...] = (
    "activity_recognition", "attribute", "color", "counting", "object_recognition", "positional_reasoning",
    "sentiment_understanding", "sport_recognition",
)
COCO_FOLDERS: tuple[tuple[str, str], ...] = (("train2014", "COCO_train2014_"), ("val2014", "COCO_val2014_"))
TEXT_FIELDS: tuple[str, ...] = ("question", "answer_vision", "answer_text", "context")


class DatasetError(InputError):
    """A data file that cannot be read at all."""


@dataclass
class RecordError(DatasetError):
    """One bad record: file, index (0-based), id (when known), field and what is wrong."""

    file: str
    index: int
    record_id: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        which = f"record {self.index}" + (f" (id {self.record_id})" if self.record_id is not None else "")
        return f"{self.file}: {which}: field '{self.field}': {self.reason}"


@dataclass(frozen=True)
class Record:
    """A conflict sample: an image and a text context that support different answers."""

    record_id: str
    image: str
    task: str
    question: str
    context: str
    answer_vision: str
    answer_text: str
    region: tuple[float, float, float, float] | None = None  # (x0, y0, x1, y1) pixels: what the question is about


@dataclass
class LoadReport:
    """Records kept; bad records skipped (lenient loading); exact duplicates of an earlier record
    (same image, task, question, context and answers), dropped."""

    records: list[Record] = field(default_factory=list)
    problems: list[RecordError] = field(default_factory=list)
    duplicates: list[RecordError] = field(default_factory=list)

    def summary(self) -> str:
        return load_summary(len(self.records), self.problems, self.duplicates)


def load_summary(kept: int, problems: list, duplicates: list) -> str:
    """One line on a load: records kept, bad ones skipped, exact duplicates dropped."""
    dropped = f", {len(duplicates)} exact duplicates dropped" if duplicates else ""
    return f"{kept} records loaded, {len(problems)} skipped{dropped}"


def json_problem(error: json.JSONDecodeError) -> str:
    """Where and what a JSON syntax error is: ``Expecting value: line 3 column 7``."""
    return f"{error.msg}: line {error.lineno} column {error.colno}"


def normalise(text: str) -> str:
    """Collapse stray whitespace (some published answers carry it)."""
    return re.sub(r"\s+", " ", text).strip()


def resolve_coco_image(image_root: Path, image_id: str) -> Path | None:
    """COCO 2014 train or val file for a 12-digit id, whichever exists."""
    for folder, prefix in COCO_FOLDERS:
        path = image_root / folder / f"{prefix}{image_id}.jpg"
        if path.is_file():
            return path
    return None


def image_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image file, from its header."""
    with Image.open(path) as opened:
        return opened.size[1], opened.size[0]


def _check_image(path: Path) -> str | None:
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError) as error:
        return f"image {path} is unreadable ({error.__class__.__name__})"
    return None


class _Validator:
    def __init__(self, file: Path, strict: bool, tasks: Iterable[str] | None) -> None:
        self.file, self.strict = str(file), strict
        self.tasks = tuple(tasks) if tasks is not None else MC2_TASKS
        self.report = LoadReport()
        self.seen: set[str] = set()
        self.contents: dict[tuple[str, ...], int] = {}

    def fail(self, index: int, record_id: str | None, field_name: str, reason: str) -> None:
        error = RecordError(self.file, index, record_id, field_name, reason)
        if self.strict:
            raise error
        self.report.problems.append(error)

    def text_fields(self, index: int, record_id: str | None, raw: dict[str, Any]) -> dict[str, str] | None:
        values = {}
        for name in TEXT_FIELDS + ("task",):
            if name not in raw:
                return self.fail(index, record_id, name, "missing")
            value = raw[name]
            if not isinstance(value, str):
                return self.fail(index, record_id, name, f"must be a string, got {type(value).__name__}")
            if not normalise(value):
                return self.fail(index, record_id, name, "is empty")
            values[name] = normalise(value)
        if values["task"] not in self.tasks:
            return self.fail(index, record_id, "task", f"unknown task {values['task']!r}; expected one of {', '.join(self.tasks)}")
        if values["answer_vision"].lower() == values["answer_text"].lower():
            return self.fail(index, record_id, "answer_text",
                             f"identical to answer_vision ({values['answer_text']!r}): no modality conflict")
        return values

    def accept(self, index: int, record_id: str, image: Path, values: dict[str, str],
               region: tuple[float, ...] | None = None) -> None:
        if record_id in self.seen:
            return self.fail(index, record_id, "id", "duplicate record id")
        content = (str(image.resolve()), *(values[name] for name in TEXT_FIELDS + ("task",)))
        if content in self.contents:
            # dropped in strict mode too: the published MC2 file holds one, and strict is the default
            self.report.duplicates.append(RecordError(self.file, index, record_id, "record",
                                                      f"exact duplicate of record {self.contents[content]}"))
            return None
        problem = _check_image(image)
        if problem:
            return self.fail(index, record_id, "image", problem)
        self.seen.add(record_id)
        self.contents[content] = index
        self.report.records.append(Record(record_id, str(image.resolve()), values["task"], values["question"], values["context"],
                                          values["answer_vision"], values["answer_text"], region))

    def region(self, index: int, record_id: str, image: Path, raw: dict[str, Any]) -> tuple[bool, tuple | None]:
        """(usable, box): the record's optional ``region`` checked against its image's size."""
        if raw.get("region") is None:
            return True, None
        try:
            size = image_size(image)
        except (UnidentifiedImageError, OSError):
            return True, None  # accept() names the unreadable image
        problem = box_problem(raw["region"], size)
        if problem:
            self.fail(index, record_id, "region", problem)
            return False, None
        return True, tuple(float(v) for v in raw["region"])


def read_json(path: Path, kind: type, what: str) -> Any:
    """A JSON file holding a ``kind`` (list or dict), or a :class:`DatasetError` naming the file and why."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from error
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}: not valid JSON ({json_problem(error)})") from error
    if not isinstance(data, kind):
        raise DatasetError(f"{path}: expected {what}, got {type(data).__name__}")
    return data


def read_json_list(path: Path) -> list:
    """A file holding a JSON list of records."""
    return read_json(path, list, "a JSON list of records")


def read_json_object(path: Path) -> dict:
    """A file holding one JSON object (a side file of regions, COCO's annotations)."""
    return read_json(path, dict, "a JSON object")


def load_mc2(path: str | Path, image_root: str | Path, *, strict: bool = True) -> LoadReport:
    """Read the published MC2 ``evaluate_final.json`` with COCO 2014 images under ``image_root``."""
    path, image_root = Path(path), Path(image_root)
    data = read_json_list(path)
    check = _Validator(path, strict, None)
    for index, raw in enumerate(data):
        if not isinstance(raw, dict):
            check.fail(index, None, "record", f"must be an object, got {type(raw).__name__}")
            continue
        image_id = raw.get("image_id")
        if image_id is None:
            check.fail(index, None, "image_id", "missing")
            continue
        image_id = str(image_id).strip()
        if not re.fullmatch(r"\d{1,12}", image_id):
            check.fail(index, image_id, "image_id", "must be a COCO id of up to 12 digits")
            continue
        image_id = image_id.zfill(12)
        record_id = f"{image_id}-{index}"
        values = check.text_fields(index, record_id, raw)
        if values is None:
            continue
        image = resolve_coco_image(image_root, image_id)
        if image is None:
            looked = " or ".join(f"{image_root}/{folder}/{prefix}{image_id}.jpg" for folder, prefix in COCO_FOLDERS)
            check.fail(index, record_id, "image_id", f"no image {image_id}: looked for {looked} (COCO 2014 names, "
                                                     "COCO_<split>2014_<12 digits>.jpg; only .jpg is looked for)")
            continue
        check.accept(index, record_id, image, values)
    return check.report


def load_jsonl(path: str | Path, *, strict: bool = True, tasks: Iterable[str] | None = None) -> LoadReport:
    """Users' own data: one JSON object per line with ``id`` (optional), ``image`` (path, relative to
    the file's folder or absolute), ``context``, ``question``, ``answer_vision``, ``answer_text`` and
    ``task`` (any task name when ``tasks`` is given; MC2's eight otherwise), and optionally ``region``:
    ``[x0, y0, x1, y1]`` in the image's pixels, the part of the image the question is about."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from error
    check = _Validator(path, strict, tasks)
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as error:
            check.fail(index, None, "line", f"not valid JSON ({json_problem(error)})")
            continue
        if not isinstance(raw, dict):
            check.fail(index, None, "record", f"must be an object, got {type(raw).__name__}")
            continue
        record_id = str(raw.get("id", index))
        values = check.text_fields(index, record_id, raw)
        if values is None:
            continue
        if not isinstance(raw.get("image"), str) or not raw["image"].strip():
            check.fail(index, record_id, "image", "missing")
            continue
        image = Path(raw["image"])
        image = image if image.is_absolute() else path.parent / image
        if not image.is_file():
            check.fail(index, record_id, "image", f"image {image} does not exist")
            continue
        usable, region = check.region(index, record_id, image, raw)
        if usable:
            check.accept(index, record_id, image, values, region)
    return check.report

