"""The project's own errors. Every error a user can fix (bad option, file, record, prompt, model
choice) derives from :class:`AnchorsError`; the command line reports exactly these (and
argparse's) in one line with exit code 2, and anything else as an internal error with its
traceback."""

from __future__ import annotations


class AnchorsError(Exception):
    """Base class of every error this package raises on purpose.

    >>> issubclass(anchors.InputError, anchors.AnchorsError)
    True"""


class InputError(AnchorsError, ValueError):
    """An option, file, sample or result that cannot be used as given; the message names it.

    >>> try:
    ...     anchors.ModelSpec("tiny:gpt2")
    ... except anchors.InputError as error:
    ...     print(error)
    --model tiny:gpt2: no tiny model 'gpt2'; choose from ..."""
