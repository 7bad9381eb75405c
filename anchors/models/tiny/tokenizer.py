"""A small byte-level BPE tokenizer trained locally, so tiny models need no hub access.

Byte-level BPE (like Qwen's and Llama-3's) encodes any text, gives character offsets, and
distinguishes a word with and without a leading space, which answer dictionaries rely on.
"""

from __future__ import annotations

from typing import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

_WORDS = """
the a an of to in on at is are was be this that it and or not with from for by as rather than
you your should follow textual text context visual content image picture answer question single word
prioritize information over any elements focus ignore only use what shows says describe according
based trust rely photo passage given read look see above below following instead please
what which how many is are color colour shape object animal kind type number count there
red green blue yellow orange purple pink brown black white gray grey crimson scarlet cherry
dog cat horse bird cow sheep car bus truck train boat plane bicycle person man woman child
one two three four five six seven eight nine ten zero 0 1 2 3 4 5 6 7 8 9
circle square triangle star cross ball table chair bed cup bottle phone book clock tree
happy sad angry calm running walking sitting standing eating playing tennis soccer baseball
left right top bottom front behind near far big small large tiny
system assistant user helpful honest strictly follows all instructions provides accurate responses
"""


def train_tokenizer(special_tokens: Iterable[str], extra_text: Iterable[str] = (), vocab_size: int = 1024) -> Tokenizer:
    """Train a deterministic byte-level BPE on a fixed English word list plus ``extra_text``."""
    specials = list(dict.fromkeys(special_tokens))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    words = _WORDS.split()
    corpus = [" ".join(words)] * 4 + [" " + w for w in words] + [w.capitalize() for w in words] + list(extra_text)
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tokenizer


def fast_tokenizer(
    special_tokens: Iterable[str],
    *,
    chat_template: str | None,
    whole_words: Iterable[str] = (),
    vocab_size: int = 1024,
    bos: str | None = None,
    eos: str,
    pad: str,
    extra_special: dict[str, str] | None = None,
) -> PreTrainedTokenizerFast:
    """Wrap a freshly trained tokenizer as a transformers fast tokenizer with a chat template."""
    names = [t for t in [bos, eos, pad] if t] + list(special_tokens) + list((extra_special or {}).values())
    words = list(whole_words)
    # repeating a word bare, after a space and capitalised makes each of those one token
    extra = [v for w in words for v in (w, " " + w, w.capitalize(), " " + w.capitalize())] * 20
    backend = train_tokenizer(names, extra_text=extra, vocab_size=vocab_size)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=bos,
        eos_token=eos,
        pad_token=pad,
        extra_special_tokens=extra_special or {},
        chat_template=chat_template,
        padding_side="left",
    )
    return tokenizer
