"""A small MC2-format fixture made on the fly: records of every task and COCO-layout images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from anchors.datasets.records import MC2_TASKS

ANSWERS = {
    "activity_recognition": ("running", "sitting"),
    "attribute": ("wooden", "metal"),
    "color": ("red ", "blue"),  # stray whitespace as in the published file
    "counting": ("three", "two"),
    "object_recognition": ("dog", "cat"),
    "positional_reasoning": ("left", "right"),
    "sentiment_understanding": ("happy", "sad"),
    "sport_recognition": ("tennis", "soccer"),
}


def write_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((56, 56, 3)) * 255).astype("uint8")
    Image.fromarray(pixels).save(path, format="JPEG")


def make_mc2(root: Path) -> tuple[Path, Path, list[dict]]:
    """Write ``evaluate_final.json`` with one record per task; even images in train2014, odd in val2014."""
    images = root / "coco"
    records = []
    for i, task in enumerate(MC2_TASKS):
        image_id = f"{100 + i:012d}"
        folder, prefix = ("train2014", "COCO_train2014_") if i % 2 == 0 else ("val2014", "COCO_val2014_")
        write_image(images / folder / f"{prefix}{image_id}.jpg", i)
        vision, text = ANSWERS[task]
        records.append({
            "image_id": image_id, "task": task, "question": f"What is shown ({task})?",
            "answer_vision": vision, "answer_text": text, "context": f"The passage says the answer is {text}.",
        })
    path = root / "evaluate_final.json"
    path.write_text(json.dumps(records))
    return path, images, records
