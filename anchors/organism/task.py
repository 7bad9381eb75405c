"""The organism's synthetic task: a coloured shape, a text context that (usually) names another
colour, a colour question, and an instruction saying which modality to follow.

Deterministic by seed. Instruction wordings are split into held-in wordings (seen in training)
and held-out ones (the paper's two robustness styles, never trained on), which give naturally
failed samples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..datasets.build import save_samples
from ..datasets.dictionaries import AnswerDictionary, save_dictionaries
from ..datasets.folder import DICTIONARIES_FILE, SAMPLES_FILE
from ..datasets.instructions import FORMAT_SENTENCE, STYLES, ModalitySample, rearranged
from ..errors import InputError
from ..prompts.prompt import Prompt

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (40, 170, 60), "blue": (40, 70, 220), "yellow": (235, 220, 40),
    "orange": (245, 140, 20), "purple": (130, 50, 170), "pink": (245, 130, 190), "brown": (120, 75, 35),
}
SYNONYMS: dict[str, tuple[str, ...]] = {
    "red": ("crimson", "scarlet"), "green": ("emerald", "lime"), "blue": ("azure", "navy"),
    "yellow": ("golden", "lemon"), "orange": ("amber", "tangerine"), "purple": ("violet", "lavender"),
    "pink": ("rose", "magenta"), "brown": ("tan", "chocolate"),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "diamond")
QUESTIONS: tuple[str, ...] = ("What color is the object?", "Which color does the shape have?", "What is the color of the shape?")
CONTEXTS: tuple[str, ...] = ("The {shape} in the picture is {colour}.", "In this image the {shape} is {colour}.",
                             "A caption says the {shape} is {colour}.")
HELD_IN: dict[str, tuple[str, ...]] = {
    "text": (
        STYLES["default"]["text"], "Follow the text.", "Trust the text, not the image.", "Ignore the image.",
        "Use the passage to answer.", "Answer according to the text.", "Rely on the written context.",
        "Do not look at the picture.", "The text is correct.",
    ),
    "vision": (
        STYLES["default"]["vision"], "Follow the image.", "Trust the image, not the text.", "Ignore the text.",
        "Use the picture to answer.", "Answer according to the image.", "Rely on what you see.",
        "Do not read the passage.", "The image is correct.",
    ),
}
# Never trained on. Chosen after training among untrained paraphrases (the paper's "focus" style and
# two short ones) so that they leave 10–40% failed samples per intent; the paper's "prioritize"
# style was followed as reliably as the training wordings (99–100%), so it is not among them.
HELD_OUT: dict[str, tuple[str, ...]] = {
    "text": (STYLES["focus"]["text"], "Answer from the sentence.", "Disregard the photo."),
    "vision": (STYLES["focus"]["vision"], "Believe your eyes.", "Disregard the caption."),
}
IMAGE_SIZE = 56
CONFLICT_RATE = 0.75


def vocabulary() -> tuple[str, ...]:
    """Words that must be single tokens (answers and their synonyms, with and without a space)."""
    return tuple(COLOURS) + tuple(s for group in SYNONYMS.values() for s in group) + SHAPES


def dictionaries() -> dict[tuple[str, str], AnswerDictionary]:
    return {(c, "color"): AnswerDictionary(c, "color", (c,) + SYNONYMS[c]) for c in COLOURS}


def render_image(colour: str, shape: str, rng: np.random.Generator) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A noisy background with one filled shape of ``colour`` at a random place and size, and the
    shape's box ``(x0, y0, x1, y1)`` in pixels (x1, y1 exclusive: PIL draws the far edge too)."""
    base = rng.integers(90, 170, size=3)
    pixels = np.clip(base + rng.normal(0, 18, size=(IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255).astype("uint8")
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    size = int(rng.integers(22, 36))
    x, y = (int(v) for v in rng.integers(2, IMAGE_SIZE - size - 2, size=2))
    fill = tuple(int(np.clip(c + rng.normal(0, 12), 0, 255)) for c in COLOURS[colour])
    box = (x, y, x + size, y + size)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon([(x, y + size), (x + size, y + size), (x + size // 2, y)], fill=fill)
    elif shape == "diamond":
        draw.polygon([(x + size // 2, y), (x + size, y + size // 2), (x + size // 2, y + size), (x, y + size // 2)], fill=fill)
    else:
        third = size // 3
        draw.rectangle((x + third, y, x + 2 * third, y + size), fill=fill)
        draw.rectangle((x, y + third, x + size, y + 2 * third), fill=fill)
    return image, (x, y, x + size + 1, y + size + 1)


@dataclass(frozen=True)
class Example:
    """One organism example: image, segments, instructed modality and the two answers."""

    example_id: str
    image: Image.Image
    segments: tuple[tuple[str, str], ...]
    instructed: str
    wording: str
    held_out: bool
    answer_vision: str
    answer_text: str
    region: tuple[int, int, int, int] | None = None  # where the shape was drawn

    @property
    def prompt(self) -> Prompt:
        """The example as a :class:`~anchors.prompts.Prompt` (for :meth:`ModelView.encode`)."""
        return Prompt(self.example_id, self.segments, self.image, region=self.region)

    @property
    def target(self) -> str:
        return self.answer_text if self.instructed == "text" else self.answer_vision

    @property
    def competing(self) -> str:
        return self.answer_vision if self.instructed == "text" else self.answer_text


def make_example(rng: np.random.Generator, index: int, *, held_out: bool = False, conflict: bool | None = None,
                 instructed: str | None = None, prefix: str = "ex") -> Example:
    colours = list(COLOURS)
    vision = colours[int(rng.integers(len(colours)))]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    conflict = bool(rng.random() < CONFLICT_RATE) if conflict is None else conflict
    text = vision if not conflict else [c for c in colours if c != vision][int(rng.integers(len(colours) - 1))]
    instructed = instructed or ("text", "vision")[int(rng.integers(2))]
    wordings = (HELD_OUT if held_out else HELD_IN)[instructed]
    wording_index = int(rng.integers(len(wordings)))
    context = CONTEXTS[int(rng.integers(len(CONTEXTS)))].format(shape=shape, colour=text)
    question = QUESTIONS[int(rng.integers(len(QUESTIONS)))]
    semantic, fmt = ("instruction_semantic", wordings[wording_index]), ("instruction_format", FORMAT_SENTENCE)
    body = (("question", question), semantic, fmt) if rng.random() < 0.5 else (semantic, ("question", question), fmt)
    image, region = render_image(vision, shape, rng)
    return Example(
        example_id=f"{prefix}{index}", image=image, region=region, segments=(("context", context),) + body,
        instructed=instructed, wording=f"{'held_out' if held_out else 'held_in'}-{wording_index}", held_out=held_out,
        answer_vision=vision, answer_text=text,
    )


def evaluation_set(n: int, seed: int, *, held_out: bool, prefix: str) -> list[Example]:
    """``n`` conflicting examples, half per intent, deterministic by seed."""
    rng = np.random.default_rng(seed)
    return [make_example(rng, i, held_out=held_out, conflict=True, instructed=("text", "vision")[i % 2], prefix=prefix)
            for i in range(n)]


def enlarged(example: Example, size: int) -> Example:
    """``example`` with its image scaled to ``size`` pixels a side by whole pixels (nearest: the
    same picture, more image tokens) and its region box scaled with it; ``size`` must be a multiple
    of :data:`IMAGE_SIZE`.

    >>> e = enlarged(evaluation_set(1, 0, held_out=False, prefix="x")[0], 112)
    >>> e.image.size, all(v % 2 == 0 for v in e.region)
    ((112, 112), True)"""
    if size % IMAGE_SIZE:
        raise InputError(f"image size {size} is not a multiple of the organism's {IMAGE_SIZE} pixels")
    factor = size // IMAGE_SIZE
    region = tuple(v * factor for v in example.region) if example.region else None
    return dataclasses.replace(example, image=example.image.resize((size, size), Image.NEAREST), region=region)


def to_modality_samples(examples: list[Example], image_folder: str | Path,
                        image_size: int = IMAGE_SIZE) -> list[ModalitySample]:
    """Write the images (at ``image_size`` pixels a side: :func:`enlarged`) and return samples in
    the datasets' format (for persistence and the CLI)."""
    folder = Path(image_folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for e in (enlarged(e, image_size) for e in examples):
        path = folder / f"{e.example_id}.png"
        e.image.save(path)
        question = dict(e.segments)["question"]
        out.append(ModalitySample(
            sample_id=e.example_id, record_id=e.example_id, image=str(path), task="color", instructed=e.instructed,
            style="held_out" if e.held_out else "held_in", variant="default", segments=e.segments, compliant_answer=e.target,
            competing_answer=e.competing, question=question, region=e.region,
        ))
    return out


def write_data(folder: str | Path, n_samples: int, *, control_variants: tuple[str, ...] = (),
               n_controls: int = 0, image_size: int = IMAGE_SIZE) -> Path:
    """A data folder (as ``anchors data build`` makes) of ``n_samples`` held-in and ``n_samples``
    held-out conflicting examples; the first ``n_controls`` held-in ones also in each of
    ``control_variants`` (ids suffixed ``:VARIANT``) for the position controls. Images are
    ``image_size`` pixels a side (:func:`enlarged`): 112 gives Qwen2.5-VL organisms 16 image
    tokens instead of 4, for region analyses."""
    folder = Path(folder)
    held_in = to_modality_samples(evaluation_set(n_samples, 1001, held_out=False, prefix="in"), folder / "images",
                                  image_size)
    held_out = to_modality_samples(evaluation_set(n_samples, 2002, held_out=True, prefix="out"), folder / "images",
                                   image_size)
    extra = [dataclasses.replace(rearranged(s, v), sample_id=f"{s.sample_id}:{v}")
             for v in control_variants if v != "default" for s in held_in[:n_controls]]
    save_samples(folder / SAMPLES_FILE, held_in + held_out + extra)
    save_dictionaries(folder / DICTIONARIES_FILE, dictionaries().values())
    return folder
