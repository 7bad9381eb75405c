"""Region boxes for records that carry none: from a side file (record id -> box), or from COCO's
instances annotations where the question names a COCO category. A record no box can be given for
is listed with the reason, never guessed."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

from ..prompts.prompt import box_problem
from .records import DatasetError, Record, image_size, read_json_object

Box = tuple[float, float, float, float]


def side_file_regions(path: str | Path, records: Sequence[Record]) -> tuple[dict[str, Box], list[tuple[str, str]]]:
    """Boxes from a JSON object ``{record id: [x0, y0, x1, y1]}`` (pixels), each checked against its
    record's image; records the file has no box for are listed."""
    path = Path(path)
    data = read_json_object(path)
    known = {r.record_id: r for r in records}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise DatasetError(f"{path}: record {unknown[0]!r}: no such record in the data ({len(unknown)} unknown ids)")
    boxes: dict[str, Box] = {}
    for record_id, box in data.items():
        problem = box_problem(box, image_size(known[record_id].image))
        if problem:
            raise DatasetError(f"{path}: record {record_id!r}: field 'region': {problem}")
        boxes[record_id] = tuple(float(v) for v in box)
    return boxes, [(r.record_id, f"{path.name} has no box for it") for r in records if r.record_id not in boxes]


def coco_regions(instances: str | Path, records: Sequence[Record]) -> tuple[dict[str, Box], list[tuple[str, str]]]:
    """Boxes from COCO's instances file (``instances_val2014.json`` and the like): the record's
    image is found by file name (or its 12-digit id), the category by its name (or plural) named
    in the question; the box bounds every non-crowd annotation of that category in the image."""
    data = read_json_object(Path(instances))
    try:
        images = {img["file_name"]: img["id"] for img in data["images"]}
        names = {c["id"]: c["name"] for c in data["categories"]}
        annotated: dict[tuple[int, str], list] = {}  # (image id, category) -> its instances' boxes, indexed once
        for a in data["annotations"]:
            if not a.get("iscrowd"):
                annotated.setdefault((a["image_id"], names[a["category_id"]]), []).append(a["bbox"])
    except (KeyError, TypeError) as error:
        raise DatasetError(f"{instances}: not a COCO instances file (missing {error})") from None
    by_number = {_number(name): image_id for name, image_id in images.items()}
    boxes, unmatched = {}, []
    for record in records:
        name = Path(record.image).name
        image_id = images.get(name, by_number.get(_number(name)))
        named = [c for c in sorted(set(names.values())) if _names(record.question, c)]
        if image_id is None:
            unmatched.append((record.record_id, f"image {name} is not in {Path(instances).name}"))
        elif len(named) != 1:
            unmatched.append((record.record_id, "the question names no COCO category" if not named else
                              f"the question names several COCO categories ({', '.join(named)})"))
        else:
            found = annotated.get((image_id, named[0]), [])
            if found:
                boxes[record.record_id] = (min(b[0] for b in found), min(b[1] for b in found),
                                           max(b[0] + b[2] for b in found), max(b[1] + b[3] for b in found))
            else:
                unmatched.append((record.record_id, f"no {named[0]!r} is annotated in image {name}"))
    return boxes, unmatched


def with_regions(records: Sequence[Record], boxes: dict[str, Box]) -> list[Record]:
    """``records`` with their boxes set (records without one keep theirs)."""
    return [dataclasses.replace(r, region=boxes[r.record_id]) if r.record_id in boxes else r for r in records]


def _names(question: str, category: str) -> bool:
    """Whether ``question`` names ``category`` (whole words, case-insensitive, or its plural)."""
    return re.search(rf"\b{re.escape(category)}(s|es)?\b", question, flags=re.IGNORECASE) is not None


def _number(file_name: str) -> int | None:
    """The COCO image id in a file name (its last 12 digits): ``COCO_val2014_000000000042.jpg`` -> 42."""
    digits = re.sub(r"\D", "", Path(file_name).stem)[-12:]
    return int(digits) if digits else None
