"""A sweep's batches spread over Ray actors (``--ray auto|ADDRESS``), one model replica each.

The driver checks everything (:func:`~anchors.runner.plan`) before any actor starts, then hands
each idle actor the next unfinished batch. An actor computes it with the runner's own
:func:`~anchors.runner.compute_batch` and writes it into the parts folder the resumable runner
uses (so that folder must be on a filesystem every node sees; on one machine it is); the driver
merges once all are there (:func:`~anchors.runner.finish`). A batch whose actor died is handed to
a fresh actor; a re-run, with or without Ray, skips every batch already written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import xarray as xr

from ..errors import InputError
from ..experiments.base import Analysis
from ..models.spec import ModelSpec, as_spec
from ..results.netcdf import load
from ..runner import Plan, Progress, compute_batch, finish, no_progress, plan


class BatchWorker:
    """One Ray actor: loads the model once, then computes the batches it is handed."""

    def __init__(self, sweep: Plan, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.sweep = sweep
        self.loaded = None

    def pid(self) -> int:
        import os

        return os.getpid()

    def compute(self, index: int) -> str:
        if self.loaded is None:
            self.loaded = self.sweep.model.load()
        compute_batch(self.sweep, self.loaded, index)
        return str(self.sweep.part_path(index))


def _portable(sweep: Plan) -> Plan:
    """The plan as actors receive it: the model as a spec to load there, nothing loaded here."""
    spec = sweep.model
    if not isinstance(spec, ModelSpec):
        raise InputError("a Ray sweep loads the model in each worker: pass a model spec (e.g. 'organism', a Hub id "
                         "or folder), not a loaded model")
    return dataclasses.replace(sweep, model=dataclasses.replace(spec, _adapter=None, _loaded=None))


def run_on_ray(analysis: Analysis, model: ModelSpec | str, samples: Any, *, out: str | Path, address: str = "auto",
               workers: int | None = None, gpus_per_worker: float = 0.0, cpus_per_worker: int = 1,
               batch_size: int = 8, overwrite: bool = False, progress: Progress = no_progress,
               log: Callable[[str], None] = lambda message: None, cli_config: dict | None = None,
               attrs: dict | None = None, max_replacements: int | None = None) -> xr.Dataset:
    """:func:`~anchors.runner.run` with the batches computed by ``workers`` Ray actors (default:
    as many as the cluster's CPUs, or GPUs with ``gpus_per_worker``, allow) on the cluster at
    ``address`` ("auto": the one this machine belongs to). ``out`` is required: it is where the
    actors' batches meet. An actor that dies has its batch rescheduled on a replacement, at most
    ``max_replacements`` times in all (default: the number of workers)."""
    if out is None:
        raise InputError("--ray needs --out: the workers write their batches into OUT.parts/")
    sweep = plan(analysis, as_spec(model), samples, out=out, batch_size=batch_size, overwrite=overwrite, log=log)
    if sweep.done is not None:
        return sweep.done
    todo = sweep.missing()
    chunks = sweep.chunks
    for index in range(len(chunks)):
        if index not in todo:
            log(f"batch {index + 1}/{len(chunks)}: already done, skipped")
    if todo:
        _compute_on_ray(sweep, todo, address, workers, gpus_per_worker, cpus_per_worker, progress, log,
                        max_replacements)
    parts = [load(sweep.part_path(i)) for i in range(len(chunks))]
    return finish(sweep, parts, cli_config=cli_config, attrs=attrs)


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` as a driver. A loopback cluster (``anchors ray up``) is
    joined on loopback: by default Ray resolves 127.0.0.1 to this machine's outward address, where
    the cluster's loopback-bound services do not answer."""
    import os

    if address.startswith(("127.0.0.1:", "localhost:")):
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # read at import; ray may have been imported already
    import ray

    ray.init(address=address, logging_level="error", log_to_driver=False)


def _compute_on_ray(sweep: Plan, todo: list[int], address: str, workers: int | None, gpus_per_worker: float,
                    cpus_per_worker: int, progress: Progress, log: Callable[[str], None],
                    max_replacements: int | None) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        connect(address)
    try:
        resources = ray.cluster_resources()
        per = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if gpus_per_worker else {})}
        fit = min(int(resources.get(kind, 0) // amount) for kind, amount in per.items())
        if fit < 1:
            raise InputError(f"the Ray cluster at {address} has {resources.get('CPU', 0):g} CPUs and "
                             f"{resources.get('GPU', 0):g} GPUs: not enough for one worker ({per})")
        count = min(workers or fit, len(todo))
        actor_class = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0)(BatchWorker)
        portable = ray.put(_portable(sweep))
        spare = count if max_replacements is None else max_replacements
        queue, running = list(todo), {}

        def start() -> tuple[Any, int]:  # an actor and its process id (asked before it has work queued)
            actor = actor_class.remote(portable, cpus_per_worker)
            return actor, ray.get(actor.pid.remote())

        idle = [start() for _ in range(count)]
        analysis, chunks = sweep.analysis, sweep.chunks
        with progress(analysis.experiment, sum(sweep.steps(i) for i in todo), analysis.unit) as advance:
            while queue or running:
                while queue and idle:
                    (actor, pid), index = idle.pop(), queue.pop(0)
                    running[actor.compute.remote(index)] = (actor, pid, index)
                    log(f"batch {index + 1}/{len(chunks)}: started on worker pid {pid}")
                ready, _ = ray.wait(list(running), num_returns=1)
                actor, pid, index = running.pop(ready[0])
                try:
                    path = ray.get(ready[0])
                except ray.exceptions.RayActorError as error:
                    if spare == 0:
                        raise RuntimeError(f"batch {index + 1}/{len(chunks)}: its worker died and no replacements "
                                           f"are left; re-run to resume ({error})") from error
                    spare -= 1
                    queue.insert(0, index)
                    idle.append(start())
                    log(f"batch {index + 1}/{len(chunks)}: its worker died; rescheduled on a new worker")
                    continue
                if not Path(path).exists():
                    raise InputError(f"a worker wrote {path}, which this machine cannot see: put --out on a "
                                     "filesystem every Ray node shares")
                idle.append((actor, pid))
                advance(sweep.steps(index))
                log(f"batch {index + 1}/{len(chunks)}: done")
        for actor, _ in idle:
            ray.kill(actor)
    finally:
        if started_here:
            ray.shutdown()
