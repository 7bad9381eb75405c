"""General-capability data sets (Table 1): TextVQA-style VQA, COCO/Flickr30k-style captions,
MMLU-style multiple choice and IFEval prompts, each read from JSONL (one object per line) or a
JSON list, and validated record by record like the conflict records: a bad record raises a
:class:`~anchors.datasets.records.RecordError` naming the file, the record and the field, before
any model loads.

Formats (``id`` optional everywhere; ``image`` relative to the file's folder or absolute):

- ``vqa``: ``image``, ``question``, ``answers`` (the annotators' answers, usually 10).
- ``caption``: ``image``, ``captions`` (reference captions, at least one).
- ``mcq``: ``question``, ``choices`` (2–26 strings, lettered A, B, …), ``answer`` (a letter);
  ``image`` optional.
- ``ifeval``: ``prompt``, ``instruction_id_list``, ``kwargs`` (one dict per instruction), as in
  Google's IFEval release (``key`` is taken as the id).
- ``caption_conflict`` (App. D): a ``caption`` record plus ``context`` (a misleading text about
  the image) and ``entity`` (the misleading text's key entity, e.g. the wrong object it names).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .records import DatasetError, RecordError, _check_image, json_problem, read_json_list

TASKS: tuple[str, ...] = ("vqa", "caption", "mcq", "ifeval", "caption_conflict")
LETTERS = string.ascii_uppercase
# The instruction each task's prompt ends with (its `instruction_format` segment).
TASK_INSTRUCTIONS: dict[str, str] = {
    "vqa": "Answer the question using a single word or phrase.",
    "caption": "Describe the image in one sentence.",
    "mcq": "Answer with the option's letter from the given choices directly.",
    "ifeval": "",
    "caption_conflict": "Describe the image in one sentence.",
}


@dataclass(frozen=True)
class CapabilityItem:
    """One capability sample: what the model sees and what it is scored against."""

    sample_id: str
    task: str
    question: str
    image: str | None = None
    references: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    answer: str = ""
    instruction_ids: tuple[str, ...] = ()
    instruction_kwargs: tuple[dict, ...] = field(default=())
    context: str = ""
    entity: str = ""

    def key(self) -> str:
        return self.sample_id


def _records(path: Path) -> list[tuple[int, Any]]:
    if path.suffix == ".json":
        return list(enumerate(read_json_list(path)))
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path}: cannot read ({error})") from error
    out = []
    for index, line in enumerate(lines):
        if line.strip():
            try:
                out.append((index, json.loads(line)))
            except json.JSONDecodeError as error:
                raise RecordError(str(path), index, None, "line", f"not valid JSON ({json_problem(error)})") from None
    return out


def _strings(raw: dict, name: str, fail: Any, at_least: int = 1) -> tuple[str, ...]:
    value = raw.get(name)
    if value is None:
        fail(name, "missing")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(name, "must be a list of strings")
    if len([v for v in value if v.strip()]) < at_least:
        fail(name, "is empty" if at_least == 1 else f"needs at least {at_least} entries")
    return tuple(value)


def _text(raw: dict, name: str, fail: Any) -> str:
    value = raw.get(name)
    if value is None:
        fail(name, "missing")
    if not isinstance(value, str) or not value.strip():
        fail(name, "must be a non-empty string")
    return value


def _image(raw: dict, folder: Path, fail: Any, required: bool) -> str | None:
    value = raw.get("image")
    if value is None:
        if required:
            fail("image", "missing")
        return None
    path = Path(value) if Path(value).is_absolute() else folder / value
    if not path.is_file():
        fail("image", f"no file {path}")
    problem = _check_image(path)
    if problem:
        fail("image", problem)
    return str(path)


def load_capability(task: str, path: str | Path) -> list[CapabilityItem]:
    """Every record of ``path`` as a :class:`CapabilityItem` of ``task``; the first bad record raises."""
    if task not in TASKS:
        raise DatasetError(f"capability task {task!r}: choose from {', '.join(TASKS)}")
    path = Path(path)
    items: list[CapabilityItem] = []
    seen: set[str] = set()
    for index, raw in _records(path):
        record_id = str(raw.get("id", raw.get("key", index))) if isinstance(raw, dict) else None

        def fail(name: str, reason: str) -> None:
            raise RecordError(str(path), index, record_id, name, reason)

        if not isinstance(raw, dict):
            fail("record", f"must be an object, got {type(raw).__name__}")
        if record_id in seen:
            fail("id", "duplicate")
        seen.add(record_id)
        items.append(_item(task, raw, str(record_id), path.parent, fail))
    if not items:
        raise DatasetError(f"{path}: no records")
    return items


def _item(task: str, raw: dict, record_id: str, folder: Path, fail: Any) -> CapabilityItem:
    if task == "vqa":
        return CapabilityItem(record_id, task, _text(raw, "question", fail), _image(raw, folder, fail, True),
                              references=_strings(raw, "answers", fail))
    if task in ("caption", "caption_conflict"):
        misleading = {"context": _text(raw, "context", fail), "entity": _text(raw, "entity", fail)} if task != "caption" else {}
        return CapabilityItem(record_id, task, "", _image(raw, folder, fail, True), references=_strings(raw, "captions", fail),
                              **misleading)
    if task == "mcq":
        choices = _strings(raw, "choices", fail, at_least=2)
        if len(choices) > len(LETTERS):
            fail("choices", f"at most {len(LETTERS)} choices")
        answer = _text(raw, "answer", fail).strip().upper()
        if answer not in LETTERS[: len(choices)]:
            fail("answer", f"{raw['answer']!r} is not one of the choice letters {', '.join(LETTERS[: len(choices)])}")
        return CapabilityItem(record_id, task, _text(raw, "question", fail), _image(raw, folder, fail, False),
                              choices=choices, answer=answer)
    ids = _strings(raw, "instruction_id_list", fail)
    kwargs = raw.get("kwargs")
    if not isinstance(kwargs, list) or len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        fail("kwargs", f"must be a list of {len(ids)} objects, one per instruction id")
    return CapabilityItem(record_id, task, _text(raw, "prompt", fail), instruction_ids=ids,
                          instruction_kwargs=tuple(kwargs))
