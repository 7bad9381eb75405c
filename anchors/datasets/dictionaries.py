"""Answer entity dictionaries (App. B): up to ten surface forms per canonical answer.

Stage 1 retrieves candidates from WordNet; stage 2 keeps those a pluggable verifier accepts
(a Python callable, or an OpenAI-compatible chat endpoint the user configures). A user file of
extra forms (e.g. Chinese, as in the paper) can add candidates.
"""

from __future__ import annotations

import json
import os
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from .records import DatasetError
from .wordnet import wordnet

MAX_FORMS = 10
# Word classes tried first per task: colour, attribute and sentiment answers are mostly adjectives.
ADJECTIVE_TASKS = frozenset({"color", "attribute", "sentiment_understanding"})

# WordNet lemmas that are never an answer's surface form: English function words (pronouns,
# determiners, prepositions, conjunctions, auxiliaries). "I" (a lemma of "one"), "a" and "it" among
# them would put frequent tokens in a dictionary and inflate Eq 1, NSSD, LDAR and MFR.
FUNCTION_WORDS = frozenset("""
a an the this that these those i me my mine myself we us our ours you your yours he him his she her hers it its
they them their theirs who whom whose which what one's some any all both each either neither no none nor not
and or but if then so as at by for from in into of off on onto out over to up upon with without about above
after before below between during through under until against among is am are was were be been being do does
did have has had will would shall should can could may might must there here
""".split())

Verifier = Callable[[str, str, str], bool]
"""``verifier(canonical, candidate, question) -> keep?``"""


@dataclass(frozen=True)
class AnswerDictionary:
    canonical: str
    task: str
    forms: tuple[str, ...]  # canonical first, at most MAX_FORMS
    dropped: tuple[tuple[str, str], ...] = ()  # (WordNet form, why it cannot be an answer)

    def to_dict(self) -> dict:
        return {"canonical": self.canonical, "task": self.task, "forms": list(self.forms),
                "dropped": [list(d) for d in self.dropped]}

    @classmethod
    def from_dict(cls, data: dict) -> "AnswerDictionary":
        return cls(data["canonical"], data["task"], tuple(data["forms"]),
                   tuple(tuple(d) for d in data.get("dropped", ())))


def cannot_be_an_answer(form: str) -> str | None:
    """Why a WordNet form is never an answer's surface form, or None if it can be one."""
    if len(form.strip()) == 1 and form.strip().isalpha():
        return "single letter"
    if form.strip().lower() in FUNCTION_WORDS:
        return "function word"
    return None


def _render(lemma: str) -> str:
    return lemma.replace("_", " ").strip().lower()


# Where a dictionary's forms come from besides the canonical answer and --extra-forms.
DICTIONARY_SOURCES: tuple[str, ...] = ("wordnet", "answers-only")


def wordnet_candidates(answer: str, task: str | None = None) -> list[str]:
    """WordNet candidates for ``answer``, most relevant first.

    Precision over recall (the verifier and user extras add recall): the most frequent sense
    that has the answer among its lemmas, in the task's preferred word class (adjectives first for
    colour/attribute/sentiment tasks, nouns otherwise), then, for each other word class, its most
    frequent sense when that sense is *named* by the answer (first lemma). Multi-word lemmas are
    rendered with spaces; case variants and duplicates are removed.
    """
    reader = wordnet()
    canonical = answer.strip().lower()
    query = canonical.replace(" ", "_")
    order = ("a", "s", "n", "v", "r") if task in ADJECTIVE_TASKS else ("n", "a", "s", "v", "r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        synsets = [s for s in reader.synsets(query) if canonical in (_render(l) for l in s.lemma_names())]
    chosen: list = []
    for rank, pos in enumerate(order):
        of_pos = [s for s in synsets if s.pos() == pos]
        if not of_pos or (pos == "s" and any(c.pos() == "a" for c in chosen)):
            continue
        if not chosen or _render(of_pos[0].lemma_names()[0]) == canonical:
            chosen.append(of_pos[0])
    out: list[str] = [canonical]
    for synset in chosen:
        for lemma in synset.lemma_names():
            form = _render(lemma)
            if form and form not in out:
                out.append(form)
    return out


def load_extra_forms(path: str | Path) -> dict[str, list[str]]:
    """A JSON object mapping canonical answers to extra surface forms."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(f"{path}: cannot read extra forms ({error})") from error
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(f, str) for f in v) for v in data.values()):
        raise DatasetError(f"{path}: extra forms must be a JSON object of answer -> list of strings")
    return {k.strip().lower(): [f.strip() for f in v if f.strip()] for k, v in data.items()}


def build_dictionary(
    answer: str,
    *,
    task: str = "unknown",
    question: str = "",
    verifier: Verifier | None = None,
    extra_forms: dict[str, list[str]] | None = None,
    limit: int = MAX_FORMS,
    source: str = "wordnet",
) -> AnswerDictionary:
    """The dictionary of one canonical answer: canonical form first, then user extras, then (with
    ``source="wordnet"``; none with ``"answers-only"``) WordNet candidates that can be an answer
    (:func:`cannot_be_an_answer` says why the others are dropped), each kept only if ``verifier``
    accepts it; at most ``limit`` forms."""
    canonical = answer.strip().lower()
    if not canonical:
        raise DatasetError("cannot build a dictionary for an empty answer")
    extras = (extra_forms or {}).get(canonical, [])
    forms, dropped = [canonical], []
    if source not in DICTIONARY_SOURCES:
        raise DatasetError(f"dictionaries must be one of {', '.join(DICTIONARY_SOURCES)}, got {source!r}")
    candidates = wordnet_candidates(canonical, task)[1:] if source == "wordnet" else []
    for candidate in extras + candidates:
        if len(forms) >= limit:
            break
        if candidate.lower() in (f.lower() for f in forms):
            continue
        reason = cannot_be_an_answer(candidate) if candidate in candidates and candidate not in extras else None
        if reason:
            dropped.append((candidate, reason))
        elif verifier is None or verifier(canonical, candidate, question):
            forms.append(candidate)
        else:
            dropped.append((candidate, "rejected by the verifier"))
    return AnswerDictionary(canonical, task, tuple(forms), tuple(dropped))


class OpenAICompatibleVerifier:
    """Asks a chat-completions endpoint (``{endpoint}/chat/completions``) whether a candidate means
    the same as the canonical answer for the question. Configure the endpoint and model; the API
    key is read from the environment variable named by ``api_key_env``. Answers are cached."""

    PROMPT = (
        "Question: {question}\nCanonical answer: {canonical}\nCandidate: {candidate}\n"
        "Is the candidate an equivalent way to give the canonical answer to this question? Reply yes or no."
    )

    def __init__(self, endpoint: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 30.0) -> None:
        self.endpoint, self.model, self.api_key_env, self.timeout = endpoint.rstrip("/"), model, api_key_env, timeout
        self.cache: dict[tuple[str, str, str], bool] = {}

    def __call__(self, canonical: str, candidate: str, question: str) -> bool:
        key = (canonical, candidate, question)
        if key not in self.cache:
            self.cache[key] = self._ask(self.PROMPT.format(question=question, canonical=canonical, candidate=candidate))
        return self.cache[key]

    def _ask(self, prompt: str) -> bool:
        body = json.dumps({"model": self.model, "temperature": 0, "messages": [{"role": "user", "content": prompt}]})
        headers = {"Content-Type": "application/json"}
        if os.environ.get(self.api_key_env):
            headers["Authorization"] = f"Bearer {os.environ[self.api_key_env]}"
        request = urllib.request.Request(f"{self.endpoint}/chat/completions", body.encode(), headers)
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            reply = json.loads(response.read())
        text = reply["choices"][0]["message"]["content"]
        return text.strip().lower().startswith("yes")


def save_dictionaries(path: str | Path, dictionaries: Iterable[AnswerDictionary]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in dictionaries), encoding="utf-8")
    return path


def load_dictionaries(path: str | Path) -> dict[tuple[str, str], AnswerDictionary]:
    """Dictionaries keyed by (canonical answer, task)."""
    out = {}
    for index, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        if line.strip():
            try:
                d = AnswerDictionary.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as error:
                raise DatasetError(f"{path}: line {index + 1}: not a saved dictionary ({error})") from error
            out[(d.canonical, d.task)] = d
    return out
