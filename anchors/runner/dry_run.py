"""What a run would cost, before paying for it: ``anchors <analysis> … --dry-run`` and :func:`dry_run`.

From the config, the model's config and processor files (no weights) and the samples, and with
the same checks a run makes first (``anchors.runner.plan``): the settings, the
forwards per batch and in all for the chosen method beside the naive count, for a remote model the
requests and the bytes each batch brings back, the largest tensors a batch holds and the peak
memory they add to the weights at the batch size in the model's dtype
(:mod:`anchors.tracer.memory`). Nothing is loaded and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..experiments.base import Analysis, Cost
from ..models.loading import LoadedModel
from ..models.spec import ModelSpec, adapter_of, as_spec
from ..tracer.memory import Held, batch_held, itemsize, peak_bytes
from .resumable import plan


@dataclass(frozen=True)
class DryRun:
    """A run's plan: per batch, its :class:`~anchors.experiments.base.Cost`; what the largest batch
    holds (:class:`~anchors.tracer.memory.Held`, largest first); the weights' and the estimated
    peak's bytes.

    >>> planned = anchors.dry_run(anchors.KnockoutProfile(method="reuse"), "organism", samples, batch_size=2)
    >>> planned.forwards < planned.naive, planned.settings  # 6 pathways × 6 layers, window 9
    (True, 36)"""

    experiment: str
    model: str
    dtype: str
    remote: bool
    method: str | None
    settings: int
    batch_size: int
    samples: int
    costs: tuple[Cost, ...]
    held: tuple[Held, ...]
    weights_bytes: int
    peak_bytes: int

    @property
    def forwards(self) -> int:
        return sum(c.on(self.remote) for c in self.costs)

    @property
    def naive(self) -> int:
        return sum(c.naive for c in self.costs)

    @property
    def requests(self) -> int:
        return sum(c.requests for c in self.costs)

    @property
    def bound(self) -> bool:
        return any(c.bound for c in self.costs)

    def rows(self) -> list[tuple[str, str]]:
        """The plan as (what, value) rows, as ``--dry-run`` prints them."""
        most = "at most " if self.bound else ""
        per_batch = max(self.costs, key=lambda c: c.on(self.remote))
        rows = [("experiment", self.experiment), ("model", f"{self.model} ({self.dtype})"),
                ("samples", f"{self.samples} in {len(self.costs)} batches of up to {self.batch_size}"),
                ("settings per batch", f"{self.settings} (edits compared with the unedited batch)"),
                (f"forwards{f' (--method {self.method})' if self.method else ''}",
                 f"{most}{self.forwards:,} in all, {most}{per_batch.on(self.remote):,} per batch")]
        if self.method is not None:
            rows.append(("forwards by --method naive (one trace per setting)",
                         f"{self.naive:,} in all, {per_batch.naive:,} per batch"))
        if self.remote:
            returned = max(c.returned for c in self.costs)
            rows += [("requests", f"{self.requests:,} ({per_batch.requests} per batch), plus 1 to measure the norms"
                      + (" and 1 canary" if self.method is not None or per_batch.requests > 1 else "")),
                     ("bytes returned per batch", f"≈ {returned:,}" if returned else "not estimated")]
        rows += [(f"holds: {h.name}", f"{_size(h.bytes)} {h.shape}") for h in self.held[:4]]
        rows += [("weights", _size(self.weights_bytes)),
                 ("peak memory, estimated", f"{_size(self.peak_bytes)} (the weights and everything a batch holds at once)")]
        return rows


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def dry_run(analysis: Analysis, model: ModelSpec | LoadedModel | str, samples: Any, *, batch_size: int = 8,
            log: Callable[[str], None] = lambda message: None, **ignored: Any) -> DryRun:
    """The :class:`DryRun` of ``run(analysis, model, samples, batch_size=…)``; takes
    :func:`~anchors.runner.resumable.run`'s
    arguments (those about writing are ignored), so it can stand in as ``run_folder``'s engine.

    >>> planned = anchors.dry_run(anchors.LensProfile(), anchors.ModelSpec("organism", remote=True), samples)
    >>> planned.forwards, planned.requests, dict(planned.rows())["weights"]
    (1, 1, '6.5 MiB')"""
    sweep = plan(analysis, model, samples, batch_size=batch_size, log=log)
    spec = as_spec(model) if not isinstance(model, LoadedModel) else None
    adapter = adapter_of(sweep.model)
    costs = tuple(analysis.cost(sweep.resolved, adapter, chunk) for chunk in sweep.chunks)
    dtype = str(spec.dtype if spec is not None else model.provenance.get("dtype", "float32"))
    widest = max(costs, key=lambda c: c.length)
    method = getattr(analysis.config, "method", None)
    held = tuple(batch_held(adapter.shape, dtype, min(batch_size, len(sweep.items)), widest.length, method,
                            widest.starts, widest.rerun_rows))
    weights = adapter.shape.n_parameters * itemsize(dtype)
    settings = max(c.settings for c in costs)
    return DryRun(analysis.experiment, str(spec.text if spec is not None else model.provenance.get("model")), dtype,
                  bool(getattr(sweep.model, "remote", False)), method, settings, batch_size, len(sweep.items), costs,
                  held, weights, peak_bytes(weights, held))
