"""WordNet through NLTK, offline.

NLTK's own data path is tried first. Otherwise the WordNet 3.0 files of the Debian packages
``wordnet-base`` and ``wordnet-sense-index`` (``/usr/share/wordnet``) are copied into an
``nltk_data/corpora/wordnet/`` cache together with a generated ``lexnames`` file (NLTK refuses
the folder without it), and that cache is added to NLTK's path.
"""

from __future__ import annotations

import os
import shutil
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import AnchorsError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
WORDNET_FILES = (
    "data.adj", "data.adv", "data.noun", "data.verb", "index.adj", "index.adv", "index.noun", "index.verb",
    "index.sense", "adj.exc", "adv.exc", "noun.exc", "verb.exc",
)
# The 45 standard lexicographer files of WordNet 3.0: number, name, syntactic category.
LEXNAMES = (
    ["adj.all", "adj.pert", "adv.all"]
    + ["noun." + n for n in ("Tops act animal artifact attribute body cognition communication event feeling food group "
                             "location motive object person phenomenon plant possession process quantity relation "
                             "shape state substance time").split()]
    + ["verb." + n for n in ("body change cognition communication competition consumption contact creation emotion "
                             "motion perception possession social stative weather").split()]
    + ["adj.ppl"]
)
_CATEGORY = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


class WordNetUnavailable(AnchorsError):
    """Neither NLTK's data path nor the Debian files provide WordNet."""


def default_cache() -> Path:
    root = os.environ.get("ANCHORS_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "instruction-anchors")
    return Path(root) / "nltk_data"


def lexnames_text() -> str:
    return "".join(f"{i:02d}\t{name}\t{_CATEGORY[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))


def install_from_debian(cache: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Copy the Debian WordNet files into ``cache/corpora/wordnet`` with a ``lexnames`` file."""
    missing = [name for name in WORDNET_FILES if not (source / name).is_file()]
    if missing:
        raise WordNetUnavailable(
            f"WordNet not found in NLTK's data path, and {source} lacks {', '.join(missing)}: install the Debian "
            "packages wordnet-base and wordnet-sense-index, or run nltk.download('wordnet'); or build without it: "
            "'anchors data build --dictionaries answers-only' (each answer plus its --extra-forms)"
        )
    target = cache / "corpora" / "wordnet"
    target.mkdir(parents=True, exist_ok=True)
    for name in WORDNET_FILES:
        if not (target / name).exists():
            shutil.copyfile(source / name, target / name)
    (target / "lexnames").write_text(lexnames_text())
    return cache


@lru_cache(maxsize=1)
def wordnet(cache: str | None = None) -> Any:
    """The NLTK WordNet reader, found offline (see module docstring)."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    try:
        root = nltk.data.find("corpora/wordnet")
    except LookupError:
        folder = install_from_debian(Path(cache) if cache else default_cache())
        if str(folder) not in nltk.data.path:
            nltk.data.path.append(str(folder))
        root = nltk.data.find("corpora/wordnet")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "multilingual functions are not available" (no OMW): expected
        return WordNetCorpusReader(root, None)
