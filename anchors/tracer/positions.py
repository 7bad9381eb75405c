"""Each row's positions of a role in a left-padded batch, and reading or writing a (B, T, …) tensor
there, aligned by role. Plain torch on tensors, so it runs inside a trace (and on a remote server);
also reachable as :class:`~anchors.tracer.model_view.ModelView` methods (``view.take`` …).

The examples share ``view`` and ``batch`` as :mod:`anchors.tracer.model_view` makes them.
"""

from __future__ import annotations

import torch

from ..errors import InputError
from ..prompts.roles import ROLE_CODE, expand_role
from .encode import EncodedBatch

Role = str | tuple[str, ...]


def positions(batch: EncodedBatch, role: Role) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's positions of ``role`` (a role, a group such as ``instruction``, or a tuple) as an
    index (B, P), padded by repeating the row's last one, and the mask (B, P) of real entries.

    >>> index, valid = view.positions(batch, "instruction")
    >>> index.shape == valid.shape and bool(valid[:, 0].all())
    True
    """
    codes = torch.tensor([ROLE_CODE[r] for r in expand_role(role)])
    rows = [torch.nonzero(torch.isin(r, codes)).flatten() for r in batch.roles.cpu()]
    for n, r in enumerate(rows):
        if len(r) == 0:
            raise InputError(f"sample {batch.sample_ids[n]}: no position holds role {role!r}")
    width = max(len(r) for r in rows)
    index = torch.stack([torch.cat([r, r[-1:].expand(width - len(r))]) for r in rows])
    valid = torch.arange(width)[None, :] < torch.tensor([len(r) for r in rows])[:, None]
    return index, valid


def _spread(index: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``index`` (B, P) expanded over ``like``'s trailing axes, on its device."""
    index = index.to(like.device)
    return index.view(*index.shape, *[1] * (like.dim() - 2)).expand(-1, -1, *like.shape[2:])


def gather_at(hidden: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``hidden`` (B, T, …) at ``index`` (B, P) from :func:`positions`: (B, P, …)."""
    return hidden.gather(1, _spread(index, hidden))


def take(hidden: torch.Tensor, batch: EncodedBatch, role: Role) -> torch.Tensor:
    """``hidden`` (B, T, …) at each row's positions of ``role``: (B, P, …), padded as
    :func:`positions` pads.

    >>> view.take(batch.roles[..., None], batch, "question").squeeze(-1).unique().tolist()
    [5]
    """
    return gather_at(hidden, positions(batch, role)[0])


def mean(hidden: torch.Tensor, batch: EncodedBatch, role: Role) -> torch.Tensor:
    """``hidden`` (B, T, …) averaged over each row's positions of ``role``: (B, …).

    >>> view.mean(torch.ones(2, batch.roles.shape[1], 3), batch, "question").shape
    torch.Size([2, 3])
    """
    valid = positions(batch, role)[1].to(hidden.device)
    weights = (valid.float() / valid.sum(1, keepdim=True)).to(hidden.dtype)
    return torch.einsum("bp...,bp->b...", take(hidden, batch, role), weights)


def put(hidden: torch.Tensor, batch: EncodedBatch, role: Role, values: torch.Tensor,
        source: EncodedBatch | None = None) -> torch.Tensor:
    """``hidden`` (B, T, …) with each row's positions of ``role`` set to ``values`` (B, P, …),
    aligned by role: the k-th such position gets the k-th value (e.g. :func:`take` of another
    prompt's run). With ``source`` (the batch ``values`` came from), rows whose counts of ``role``
    positions differ are refused, naming both samples.

    >>> with view.trace(batch):
    ...     donor = view.take(view.read("resid_post", 1), batch, "instruction").save()
    >>> with view.trace(batch):
    ...     post = view.read("resid_post", 1)
    ...     view.write("resid_post", 1, view.put(post, batch, "instruction", donor, source=batch))
    """
    index, valid = positions(batch, role)
    if source is not None:
        theirs = positions(source, role)[1].sum(1)
        for n, (mine, other) in enumerate(zip(valid.sum(1).tolist(), theirs.tolist())):
            if mine != other:
                raise InputError(f"sample {batch.sample_ids[n]}: {mine} positions of role {role!r}, but {other} in "
                                 f"source sample {source.sample_ids[n]}; patching aligns them one to one")
    return hidden.scatter(1, _spread(index, hidden), values.to(hidden.device, hidden.dtype))
