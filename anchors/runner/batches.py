"""One batch of a run: computed (a remote model's failed batch retried), then kept — stamped with
the model's provenance and written atomically into the run's parts folder."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import xarray as xr

from ..errors import AnchorsError, InputError
from ..experiments.base import Advance
from ..models.loading import LoadedModel
from ..results.netcdf import load, save

if TYPE_CHECKING:
    from .resumable import Plan


class RemoteBatchError(AnchorsError):
    """A batch kept failing on the remote server; the message names it. Finished batches are kept."""


@dataclass(frozen=True)
class Retry:
    """How a remote batch that failed (server gone, connection dropped, job refused) is retried:
    up to ``attempts`` tries in all, waiting ``backoff``·2^(n-1) seconds (at most ``max_wait``)
    after the n-th failure."""

    attempts: int = 3
    backoff: float = 2.0
    max_wait: float = 60.0

    def wait(self, failures: int) -> float:
        return min(self.max_wait, self.backoff * 2 ** (failures - 1))


def compute_batch(sweep: Plan, loaded: LoadedModel, index: int, advance: Advance = lambda n: None, *,
                  retry: Retry | None = None, log: Callable[[str], None] = lambda message: None) -> xr.Dataset:
    """Batch ``index`` of ``sweep`` (:func:`batch_result`), written atomically into the parts
    folder (if any) with the model's provenance (:func:`keep_part`)."""
    return keep_part(sweep, loaded, index, batch_result(sweep, loaded, index, advance, retry=retry, log=log))


def batch_result(sweep: Plan, loaded: LoadedModel, index: int, advance: Advance = lambda n: None, *,
                 retry: Retry | None = None, log: Callable[[str], None] = lambda message: None) -> xr.Dataset:
    """Batch ``index`` of ``sweep``, computed; a remote model's failed batch is retried per ``retry``."""
    chunk = sweep.chunks[index]
    retry = retry or Retry()
    for attempt in range(1, retry.attempts + 1):
        try:
            return sweep.analysis.run_batch(sweep.resolved, loaded, chunk, advance)
        except AnchorsError:
            raise
        except Exception as error:
            if not loaded.remote:
                raise
            where = f"batch {index + 1}/{len(sweep.chunks)} (samples {chunk[0].sample_id} … {chunk[-1].sample_id})"
            if attempt == retry.attempts:
                raise RemoteBatchError(f"{where} failed on the server at {loaded.provenance.get('backend')} "
                                       f"{attempt} times; finished batches are kept, re-run to resume. Last error: "
                                       f"{type(error).__name__}: {error}") from error
            wait = retry.wait(attempt)
            log(f"{where}: {type(error).__name__}: {error}; retrying in {wait:.1f} s")
            time.sleep(wait)
    raise InputError(f"Retry(attempts={retry.attempts}): a batch needs at least one attempt")


def keep_part(sweep: Plan, loaded: LoadedModel, index: int, part: xr.Dataset) -> xr.Dataset:
    """Batch ``index``'s result stamped with the model's provenance and written atomically into the
    parts folder (if any)."""
    part.attrs["model_provenance"] = json.dumps(loaded.provenance, sort_keys=True)
    path = sweep.part_path(index)
    return load(save(part, path)) if path is not None else part
