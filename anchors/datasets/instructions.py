"""Turn a conflict record into modality-following samples (App. B): one that asks to follow the
text and one that asks to follow the image, with the instruction split into a modality-specifying
(semantic) part and an output-format part, tracked as separate segments."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import Literal

from ..errors import InputError
from ..prompts.prompt import Prompt
from .records import Record

# (follow text, follow image) for each style; "default" is the paper's main wording, the other two
# are its App. C.3 robustness styles with their vision mirrors.
STYLES: dict[str, dict[str, str]] = {
    "default": {
        "text": "You should follow the textual context rather than the visual content.",
        "vision": "You should follow the visual content rather than the textual context.",
    },
    "prioritize": {
        "text": "Prioritize the information in the text over any visual elements.",
        "vision": "Prioritize the information in the image over any textual elements.",
    },
    "focus": {
        "text": "Focus on the textual context; ignore visual content.",
        "vision": "Focus on the visual content; ignore textual context.",
    },
    # the authors' released data (EchoDreamer/Modality-Following)
    "authors": {
        "text": "In case there is an inconsistency between the Text Context and the input image content, you must rely "
                "on the text context rather than the input image content.",
        "vision": "In case there is an inconsistency between the Text Context and the input image content, you must "
                  "rely on the image content rather than the text context.",
    },
}
FORMAT_SENTENCE = "Answer the question with a single word."
# a style's own format sentence, where it has one (the authors' question3 ending)
STYLE_FORMATS: dict[str, str] = {"authors": "Answer the question using a single word or phrase."}
GENERAL_SYSTEM_PROMPT = (
    "You are a helpful and honest assistant who strictly follows all user instructions and provides accurate "
    "responses."
)
VARIANTS: tuple[str, ...] = ("default", "swapped", "system_before", "system_between")
Modality = Literal["text", "vision"]


@dataclass(frozen=True)
class ModalitySample:
    """A record plus an instruction; ``segments`` are (role, text) pairs in prompt order."""

    sample_id: str
    record_id: str
    image: str
    task: str
    instructed: str
    style: str
    variant: str
    segments: tuple[tuple[str, str], ...]
    compliant_answer: str
    competing_answer: str
    question: str
    separator: str = " "  # between segments in the user message (the authors' data: newlines)
    region: tuple[float, float, float, float] | None = None  # the box the question is about, in image pixels

    def to_dict(self) -> dict:
        out = asdict(self)
        out["segments"] = [list(s) for s in self.segments]
        if self.region is None:
            del out["region"]  # folders without regions stay as they were
        else:
            out["region"] = list(self.region)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ModalitySample":
        region = data.get("region")
        return cls(**{**data, "segments": tuple(tuple(s) for s in data["segments"]),
                      "region": tuple(region) if region is not None else None})


def instruction(modality: Modality, style: str = "default") -> str:
    try:
        return STYLES[style][modality]
    except KeyError:
        raise InputError(f"unknown style {style!r} or modality {modality!r}; styles: {list(STYLES)}") from None


def arrange(head: tuple[tuple[str, str], ...], semantic: str, format_sentence: str, variant: str,
            system_prompt: str = GENERAL_SYSTEM_PROMPT) -> tuple[tuple[str, str], ...]:
    """The prompt's segments for a variant (App. C.2): ``head`` (context, question) then
    ``default`` (semantic then format), ``swapped`` (format then semantic), ``system_before`` (a
    general system prompt before the instruction) or ``system_between`` (between its parts)."""
    s, f, y = ("instruction_semantic", semantic), ("instruction_format", format_sentence), ("system", system_prompt)
    layouts = {"default": (s, f), "swapped": (f, s), "system_before": (y, s, f), "system_between": (s, y, f)}
    if variant not in layouts:
        raise InputError(f"unknown variant {variant!r}; variants: {VARIANTS}")
    return tuple(head) + layouts[variant]


def build_sample(record: Record, modality: Modality, *, style: str = "default", variant: str = "default",
                 format_sentence: str | None = None) -> ModalitySample:
    """One modality-following sample of ``record`` in a prompt ``variant`` (see :func:`arrange`); the
    format sentence is the style's own (:data:`STYLE_FORMATS`) or :data:`FORMAT_SENTENCE`."""
    format_sentence = format_sentence or STYLE_FORMATS.get(style, FORMAT_SENTENCE)
    segments = arrange((("context", record.context), ("question", record.question)), instruction(modality, style),
                       format_sentence, variant)
    compliant, competing = (
        (record.answer_text, record.answer_vision) if modality == "text" else (record.answer_vision, record.answer_text)
    )
    return ModalitySample(
        sample_id=f"{record.record_id}:{modality}:{style}:{variant}", record_id=record.record_id, image=record.image,
        task=record.task, instructed=modality, style=style, variant=variant, segments=segments,
        compliant_answer=compliant, competing_answer=competing, question=record.question, region=record.region,
    )


def rearranged(sample: ModalitySample, variant: str) -> ModalitySample:
    """``sample`` with its instruction laid out as ``variant`` (same id)."""
    parts = dict(sample.segments)
    head = tuple(s for s in sample.segments if s[0] in ("context", "question"))
    return dataclasses.replace(sample, variant=variant, segments=arrange(
        head, parts["instruction_semantic"], parts["instruction_format"], variant))


def build_samples(records: list[Record], *, styles: tuple[str, ...] = ("default",),
                  variants: tuple[str, ...] = ("default",), modalities: tuple[Modality, ...] = ("text", "vision"),
                  ) -> list[ModalitySample]:
    return [build_sample(r, m, style=s, variant=v) for r in records for m in modalities for s in styles for v in variants]


EXAMPLE_RECORD = Record(record_id="example", image="", task="color", question="What color is the ball?",
                        context="The ball in the picture is red.", answer_vision="blue", answer_text="red")


def example_prompt(with_image: bool) -> Prompt:
    """The text-following prompt of a made-up record (a blue image, a text saying red), for
    showing how a model's template and processor label tokens (``anchors roles``)."""
    from PIL import Image

    sample = build_sample(EXAMPLE_RECORD, "text")
    return Prompt(sample.sample_id, sample.segments, image=Image.new("RGB", (56, 56), "blue") if with_image else None)
