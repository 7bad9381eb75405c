"""Scores for the general-capability checks (Table 1), from the standard libraries where one
exists: caption metrics from ``pycocoevalcap`` (the COCO caption evaluation code), IFEval from the
instruction checkers of ``lm-eval``. VQA accuracy follows the VQA challenge's definition (there is
no maintained library for it): an answer counts fully if at least 3 of the 10 annotators gave it,
averaged over the 10 leave-one-annotator-out subsets, after the standard answer normalisation.

No torch here; the optional libraries are imported on first use.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping, Sequence

NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten".split())}
ARTICLES = {"a", "an", "the"}
# The VQA evaluation's contractions written without apostrophes, restored (a representative subset).
CONTRACTIONS = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
                "wont": "won't", "didnt": "didn't", "wasnt": "wasn't", "werent": "weren't", "hasnt": "hasn't",
                "havent": "haven't", "shouldnt": "shouldn't", "couldnt": "couldn't", "wouldnt": "wouldn't",
                "im": "i'm", "ive": "i've", "youre": "you're", "theyre": "they're", "thats": "that's",
                "whats": "what's", "lets": "let's"}
# The VQA evaluation's punctuation: removed where it touches a space, else it separates words.
_PUNCTUATION = re.compile(r"(?<=\s)[;/\[\]\"{}()=+\\_\-><@`,?!]|[;/\[\]\"{}()=+\\_\-><@`,?!](?=\s|$)|^[;/\[\]\"{}()=+\\_\-><@`,?!]")
_INNER = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!]")
_PERIOD = re.compile(r"(?<!\d)\.(?!\d)")  # a period that is not a decimal point
_THOUSANDS = re.compile(r"(?<=\d),(?=\d)")


def normalise_answer(text: str) -> str:
    """The VQA evaluation's answer normalisation: lower case; thousands commas dropped;
    punctuation removed where it touches a space and read as a word break inside a word; periods
    removed except decimal points; number words as digits; articles dropped; contractions
    written without their apostrophe restored."""
    text = _THOUSANDS.sub("", " ".join(text.lower().split()))
    text = _PERIOD.sub("", _INNER.sub(" ", _PUNCTUATION.sub("", text)))
    words = [NUMBER_WORDS.get(w, w) for w in text.split() if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA accuracy of ``prediction`` against the annotators' ``answers``: the mean over each
    annotator left out of min(1, matches among the others / 3)."""
    predicted = normalise_answer(prediction)
    truth = [normalise_answer(a) for a in answers]
    if len(truth) == 1:
        return float(truth[0] == predicted)
    scores = [min(1.0, sum(t == predicted for j, t in enumerate(truth) if j != i) / 3) for i in range(len(truth))]
    return sum(scores) / len(scores)


def spice_available() -> tuple[bool, str]:
    """Whether pycocoevalcap's SPICE can run offline: it needs Stanford CoreNLP 3.6.0's jars in its
    ``lib`` folder and downloads them on first use otherwise (which would fail or hang here)."""
    from pycocoevalcap import spice

    lib = Path(spice.__file__).parent / "lib"
    missing = [name for name in ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar")
               if not (lib / name).is_file()]
    if missing:
        return False, f"SPICE skipped: {', '.join(missing)} not in {lib} (pycocoevalcap downloads them on first use)"
    return True, ""


def caption_scores(columns: Sequence[Mapping[str, str]], references: Mapping[str, Sequence[str]],
                   spice: bool = False) -> list[dict[str, list[float]]]:
    """Per-image CIDEr-D, BLEU-4 and METEOR (and SPICE when asked and available) of each column of
    predictions (one caption per image id, e.g. one per intervention setting) against
    ``references``, keyed by image id, from pycocoevalcap after its PTB tokenisation.

    CIDEr-D's document frequencies come from the references given, as in the COCO evaluation, and
    are computed per column. The Java parts (the tokeniser, METEOR, SPICE) run once for all columns:
    their per-image scores do not depend on the other images, so this equals scoring each column
    alone, without a JVM start per column.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    keys = [[(c, i) for i in column] for c, column in enumerate(columns)]
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": r} for r in references[i]] for i in {i for c in columns for i in c}})
    res = tokenizer.tokenize({f"{c}\t{i}": [{"caption": columns[c][i]}] for column in keys for c, i in column})
    every_gts = {f"{c}\t{i}": gts[i] for column in keys for c, i in column}
    _, meteor = Meteor().compute_score(every_gts, res)
    meteor_of = dict(zip(every_gts, meteor))
    with_spice = spice and spice_available()[0]
    if with_spice:
        from pycocoevalcap.spice.spice import Spice

        _, per_image = Spice().compute_score(every_gts, res)
        spice_of = {key: float(s["All"]["f"]) for key, s in zip(every_gts, per_image)}
    out = []
    for column in keys:
        names = [f"{c}\t{i}" for c, i in column]
        column_gts, column_res = {n: gts[i] for n, (_, i) in zip(names, column)}, {n: res[n] for n in names}
        _, bleu = Bleu(4).compute_score(column_gts, column_res, verbose=0)
        _, cider = Cider().compute_score(column_gts, column_res)
        scores = {"cider_d": [float(x) for x in cider], "bleu_4": [float(x) for x in bleu[3]],
                  "meteor": [float(meteor_of[n]) for n in names]}
        if with_spice:
            scores["spice"] = [spice_of[n] for n in names]
        out.append(scores)
    return out


def ifeval_follows(prompt: str, instruction_ids: Sequence[str], kwargs: Sequence[dict], response: str
                   ) -> tuple[bool, bool]:
    """(strict, loose) prompt-level IFEval: whether ``response`` follows every instruction, by
    lm-eval's checkers (loose also tries the response without its first/last line and asterisks).
    Several checkers ask ``langdetect`` whether the text is English, which is random unless seeded
    ("hello world" came out Dutch 4 times in 50): it is seeded here so scores repeat."""
    from langdetect import DetectorFactory
    from lm_eval.tasks.ifeval.utils import InputExample, test_instruction_following_loose, test_instruction_following_strict

    DetectorFactory.seed = 0

    example = InputExample(key=0, instruction_id_list=list(instruction_ids), prompt=prompt, kwargs=list(kwargs))
    return (test_instruction_following_strict(example, response).follow_all_instructions,
            test_instruction_following_loose(example, response).follow_all_instructions)


def unknown_instructions(instruction_ids: Sequence[str]) -> list[str]:
    """The ids lm-eval's IFEval registry does not know."""
    from lm_eval.tasks.ifeval.instructions_registry import INSTRUCTION_DICT

    return [i for i in instruction_ids if i not in INSTRUCTION_DICT]
