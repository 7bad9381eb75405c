"""Conflict records (MC2 or JSONL), instruction building, answer dictionaries and their tokenisation."""

from .build import (
    CoverageReport, TokenisedSample, dictionaries_for, first_token_ids, load_samples, save_samples, to_traced, tokenise,
)
from .dictionaries import (
    AnswerDictionary, OpenAICompatibleVerifier, build_dictionary, load_dictionaries, load_extra_forms,
    save_dictionaries, wordnet_candidates,
)
from .folder import DataFolder
from .instructions import STYLES, VARIANTS, ModalitySample, arrange, build_sample, build_samples, rearranged
from .records import MC2_TASKS, DatasetError, LoadReport, Record, RecordError, load_jsonl, load_mc2
from .wordnet import WordNetUnavailable, wordnet

__all__ = [
    "AnswerDictionary", "CoverageReport", "DataFolder", "DatasetError", "LoadReport", "MC2_TASKS", "ModalitySample",
    "OpenAICompatibleVerifier", "Record", "RecordError", "STYLES", "TokenisedSample", "VARIANTS", "WordNetUnavailable",
    "arrange", "build_dictionary", "build_sample", "build_samples", "dictionaries_for", "first_token_ids", "load_dictionaries",
    "load_extra_forms", "load_jsonl", "load_mc2", "load_samples", "rearranged", "save_dictionaries", "save_samples",
    "to_traced",
    "tokenise", "wordnet", "wordnet_candidates",
]
