"""Where a trace runs: here, on an NDIF server, or in nnsight's in-process simulation of one."""

from __future__ import annotations

from ..models.loading import LoadedModel


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
