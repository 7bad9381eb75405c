"""Beyond one machine, measured in one process on the real engines (ratios, not absolute times):

- Ray: one knockout sweep on the organism with 1 worker and with 2 workers (one CPU and one torch
  thread each) of a local two-CPU cluster, against the same sweep in this process on one thread;
  the three results must be identical.
- NDIF: the same lens and knockout batches locally and through a local NDIF 0.1.2 server, plus the
  stack's start time and the first request (which deploys the model).

    .venv/bin/python benchmarks/backends.py [--samples 64] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
import xarray as xr
from nnsight import CONFIG

from anchors.backends import cluster, ndif
from anchors.backends.ray_sweep import run_on_ray
from anchors.datasets import DataFolder
from anchors.experiments import KnockoutProfile, LensProfile
from anchors.models import ModelSpec
from anchors.organism.task import write_data
from anchors.runner import run


def timed(call):
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def ray_scaling(samples, batch_size: int, scratch: Path) -> None:
    analysis = KnockoutProfile(method="naive", windows=(3,))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        local, local_s = timed(lambda: run(analysis, ModelSpec("organism"), samples, batch_size=batch_size))
    finally:
        torch.set_num_threads(threads)
    local_cluster, start_s = timed(lambda: cluster.up(num_cpus=2))
    try:
        results = {}
        for workers in (1, 2):
            out = scratch / f"ray-{workers}.nc"
            results[workers] = timed(lambda: run_on_ray(analysis, "organism", samples, out=out, workers=workers,
                                                        address=local_cluster.address, batch_size=batch_size))
    finally:
        local_cluster.down()
    for workers, (result, _) in results.items():
        xr.testing.assert_identical(result.drop_attrs(), local.drop_attrs())
    one, two = results[1][1], results[2][1]
    print(f"Ray cluster start {start_s:.1f} s; knockout sweep, {len(samples)} samples, batch {batch_size}, "
          f"one thread per worker: in-process {local_s:.1f} s, 1 worker {one:.1f} s ({one / local_s:.2f}x), "
          f"2 workers {two:.1f} s ({two / local_s:.2f}x); 2 vs 1 worker: {one / two:.2f}x faster; identical data")


def ndif_overhead(samples, batch_size: int) -> None:
    stack, start_s = timed(ndif.up)
    previous, CONFIG.API.HOST = CONFIG.API.HOST, stack.host
    try:
        first = samples[:batch_size]
        _, deploy_s = timed(lambda: run(LensProfile(top_k=3), ModelSpec("organism", remote=True), first,
                                        batch_size=batch_size))
        for name, analysis in (("lens", LensProfile(top_k=3)), ("knockout (naive)", KnockoutProfile(method="naive",
                                                                                                  windows=(3,)))):
            _, local_s = timed(lambda: run(analysis, ModelSpec("organism"), samples, batch_size=batch_size))
            _, remote_s = timed(lambda: run(analysis, ModelSpec("organism", remote=True), samples,
                                            batch_size=batch_size))
            print(f"NDIF {name}: {len(samples)} samples, batch {batch_size}: local {local_s:.2f} s, "
                  f"remote {remote_s:.2f} s ({remote_s / local_s:.1f}x)")
    finally:
        CONFIG.API.HOST = previous
        stack.down()
    print(f"NDIF stack start {start_s:.1f} s; first request (deploys the model) {deploy_s:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="anchors-bench-"))
    try:
        data = write_data(scratch / "data", args.samples // 2)
        samples = DataFolder.open(data).traced(ModelSpec("organism").adapter().tokenizer)
        ray_scaling(samples, args.batch_size, scratch)
        ndif_overhead(samples, args.batch_size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
