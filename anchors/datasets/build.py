"""From modality-following samples and dictionaries to traced samples: first-token ids per
tokenizer, the coverage filter, and JSONL persistence so a run is reproducible without WordNet."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from PIL import Image

from ..prompts.prompt import Prompt, TracedSample
from ..results.provenance import portable_path
from .dictionaries import AnswerDictionary, Verifier, build_dictionary
from .instructions import ModalitySample
from .records import DatasetError


def first_token_id(tokenizer: Any, text: str) -> int | None:
    """The first token of ``text`` that is not pure whitespace (SentencePiece may emit a lone '▁')."""
    for token_id in tokenizer.encode(text, add_special_tokens=False):
        if tokenizer.decode([token_id]).strip():
            return int(token_id)
    return None


def first_token_ids(tokenizer: Any, forms: Iterable[str]) -> tuple[int, ...]:
    """First-token ids of every form, as written and capitalised, with and without a leading space
    (an answer may open the reply or follow a space), de-duplicated in order."""
    ids: list[int] = []
    for form in forms:
        for variant in dict.fromkeys([form, form[:1].upper() + form[1:]]):
            for text in (variant, " " + variant):
                token = first_token_id(tokenizer, text)
                if token is not None and token not in ids:
                    ids.append(token)
    return tuple(ids)


def dictionaries_for(
    samples: Sequence[ModalitySample],
    *,
    verifier: Verifier | None = None,
    extra_forms: dict[str, list[str]] | None = None,
    source: str = "wordnet",
) -> dict[tuple[str, str], AnswerDictionary]:
    """One dictionary per (canonical answer, task) used by ``samples``, its forms from ``source``
    (:func:`~anchors.datasets.dictionaries.build_dictionary`)."""
    out: dict[tuple[str, str], AnswerDictionary] = {}
    for s in samples:
        for answer in (s.compliant_answer, s.competing_answer):
            key = (answer.strip().lower(), s.task)
            if key not in out:
                out[key] = build_dictionary(answer, task=s.task, question=s.question, verifier=verifier,
                                            extra_forms=extra_forms, source=source)
    return out


@dataclass
class CoverageReport:
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    dropped_ids: dict[str, str] = field(default_factory=dict)

    def summary(self, named: int = 5) -> str:
        """Counts per reason, naming up to ``named`` dropped samples of each."""
        parts = []
        for reason, n in sorted(self.dropped.items()):
            ids = [sid for sid, why in self.dropped_ids.items() if why == reason]
            more = f", … {len(ids) - named} more" if len(ids) > named else ""
            parts.append(f"{n} {reason} ({', '.join(ids[:named])}{more})")
        return f"{self.kept} samples kept; dropped: {', '.join(parts) or 'none'}"


@dataclass(frozen=True)
class TokenisedSample:
    sample: ModalitySample
    compliant_ids: tuple[int, ...]
    competing_ids: tuple[int, ...]
    compliant_forms: tuple[str, ...] = ()
    competing_forms: tuple[str, ...] = ()


def tokenise(
    samples: Sequence[ModalitySample], dictionaries: dict[tuple[str, str], AnswerDictionary], tokenizer: Any
) -> tuple[list[TokenisedSample], CoverageReport]:
    """First-token ids of both dictionaries per sample, dropping samples whose dictionaries have
    no id, or share ids (the decision subspace would be ill-defined); the report says why."""
    report, kept = CoverageReport(), []
    for s in samples:
        pair = []
        for answer in (s.compliant_answer, s.competing_answer):
            key = (answer.strip().lower(), s.task)
            if key not in dictionaries:
                raise DatasetError(f"sample {s.sample_id}: no dictionary for answer {key[0]!r} (task {s.task})")
            pair.append(dictionaries[key])
        compliant, competing = pair
        c_ids, k_ids = first_token_ids(tokenizer, compliant.forms), first_token_ids(tokenizer, competing.forms)
        reason = (
            "no compliant ids" if not c_ids else "no competing ids" if not k_ids
            else "shared ids" if set(c_ids) & set(k_ids) else None
        )
        if reason:
            report.dropped[reason] += 1
            report.dropped_ids[s.sample_id] = reason
            continue
        kept.append(TokenisedSample(s, c_ids, k_ids, compliant.forms, competing.forms))
    report.kept = len(kept)
    return kept, report


def open_rgb(sample: ModalitySample) -> Any:
    """The sample's image as RGB, or an error naming the sample and the file."""
    try:
        return Image.open(sample.image).convert("RGB")
    except OSError as error:
        raise DatasetError(f"sample {sample.sample_id}: field 'image': cannot open {sample.image} "
                           f"({getattr(error, 'strerror', None) or error})") from error


def sample_prompt(sample: ModalitySample, open_image: Callable[[ModalitySample], Any] = open_rgb) -> Prompt:
    """The prompt a sample is run as: its segments, image, separator and region box."""
    return Prompt(sample.sample_id, sample.segments, image=open_image(sample), separator=sample.separator,
                  region=sample.region)


def to_traced(items: Sequence[TokenisedSample], open_image: Callable[[ModalitySample], Any] = open_rgb) -> list[TracedSample]:
    """Traced samples for the analyses (images opened as RGB; a missing one names the sample)."""
    return [
        TracedSample(
            sample_prompt(t.sample, open_image), t.compliant_ids, t.competing_ids, task=t.sample.task,
            instructed=t.sample.instructed, style=t.sample.style, compliant_forms=t.compliant_forms, competing_forms=t.competing_forms, image_ref=t.sample.image,
            variant=t.sample.variant,
        )
        for t in items
    ]


def save_samples(path: str | Path, samples: Iterable[ModalitySample]) -> Path:
    """JSONL of samples; image paths relative to the file's folder when inside it, so a data folder
    can be moved or used from any working directory."""
    path = Path(path)
    rows = [{**s.to_dict(), "image": portable_path(s.image, path.parent)} for s in samples]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def load_samples(path: str | Path) -> list[ModalitySample]:
    path = Path(path)
    out = []
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            sample = ModalitySample.from_dict(json.loads(line))
            out.append(dataclasses.replace(sample, image=str(path.parent / sample.image)))
        except (json.JSONDecodeError, TypeError, KeyError) as error:
            raise DatasetError(f"{path}: line {index + 1}: not a saved sample ({error})") from error
    return out
