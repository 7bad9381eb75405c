"""Where a trace runs: here, on an NDIF server, or in nnsight's in-process simulation of one."""

from __future__ import annotations

from typing import Callable, Sequence, TypeVar

from ..models.loading import LoadedModel

T = TypeVar("T")


def remote_kwargs(loaded: LoadedModel, remote: bool | str | None = None) -> dict:
    """Keyword arguments of ``model.trace``/``generate`` for a remote (NDIF) run: ``remote`` if
    given, else as the model was loaded (``loaded.remote``); ``"local"`` simulates the round trip
    in-process. The ``anchors`` package travels by value."""
    remote = loaded.remote if remote is None else remote
    if not remote:
        return {}
    import nnsight

    import anchors

    nnsight.register(anchors)
    return {"remote": remote}


def in_one_request(loaded: LoadedModel, calls: Sequence[Callable[[bool | None], T]]) -> list[T]:
    """Each call's result, the calls run in order, each given the ``remote`` its traces take. On a
    remote model they go as **one** request (an nnsight session, whose body the server runs): each
    call runs its traces with ``remote=False`` there and returns plain tensors, which come back
    together. Locally it is a loop, the traces run as the model was loaded (``None``).

    >>> from anchors.readouts import Subspaces
    >>> space = Subspaces.from_ids(batch.sample_ids, [[5]] * 2, [[6]] * 2)
    >>> top = lambda remote: anchors.trace_batch(view.loaded, batch, space, remote=remote).top_token
    >>> [tuple(t.shape) for t in anchors.tracer.in_one_request(view.loaded, [top, top])]
    [(2,), (2,)]
    """
    if not loaded.remote:
        return [call(None) for call in calls]
    import nnsight

    with loaded.model.session(**remote_kwargs(loaded)):
        results = nnsight.save([call(False) for call in calls])
    return list(results)
