"""Remote sweeps on the local NDIF stack, sent as an ordinary API key sends them (ndif's process
sandbox), measured in one process (ratios, not absolute times):

- the organism's knockout profile (6 pathways × all layers, window 3) with ``--method reuse``
  against ``--method naive``, the same samples and batches, at ``--batch-size`` and with all samples
  in one batch; the two must agree within 1e-5; beside them the lens profile (one trace per batch:
  the floor a sandboxed request costs);
- requests and bytes returned per batch for each method, and for the head intervention (a run's
  first batch also carries the canary's request; the counts are the last batch's);
- the naive profile with 3 batches in flight against 1 (``--in-flight``).

    .venv/bin/python benchmarks/remote_sweeps.py [--samples 64] [--batch-size 8]

The script fails when an intervention batch takes more than 2 requests; it reports (and does not
enforce) the 0.35× target for remote ``reuse`` against ``naive``, which a sandboxed request's fixed
cost keeps out of reach at small batches here.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from nnsight import CONFIG
from nnsight.intervention.backends.remote import RemoteBackend

from anchors.backends import ndif
from anchors.datasets import DataFolder
from anchors.experiments import HeadIntervention, KnockoutProfile, LensProfile
from anchors.models import ModelSpec
from anchors.organism.task import write_data
from anchors.runner import run

PROFILE = dict(windows=(3,))  # every pathway and layer: 6 × 6 settings on the organism
TOLERANCE = 1e-5


class Replies:
    """Bytes and requests per batch, from nnsight's client (every request's reply passes
    ``RemoteBackend.finalize``)."""

    def __init__(self) -> None:
        self.received: list[int] = []
        self.batches: list[tuple[int, int]] = []
        original = RemoteBackend.finalize
        RemoteBackend.finalize = lambda backend, content: self.received.append(len(content)) or original(backend, content)

    def log(self, message: str) -> None:
        if message.endswith(": done"):
            self.batches.append((sum(self.received), len(self.received)))
            self.received.clear()

    def reset(self) -> None:
        self.received.clear()
        self.batches.clear()


def timed_run(analysis, samples, batch_size: int, replies: Replies, **options):
    replies.reset()
    start = time.perf_counter()
    result = run(analysis, ModelSpec("organism", remote=True), samples, batch_size=batch_size, log=replies.log, **options)
    return result, time.perf_counter() - start, list(replies.batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="anchors-bench-"))
    stack = ndif.up()
    previous = CONFIG.API.HOST, CONFIG.API.APIKEY
    CONFIG.API.HOST, CONFIG.API.APIKEY = stack.host, "an-ordinary-key"  # not the trusted key: the sandbox
    replies = Replies()
    try:
        samples = DataFolder.open(write_data(scratch / "data", args.samples // 2)).traced(
            ModelSpec("organism").adapter().tokenizer)
        run(LensProfile(top_k=3), ModelSpec("organism", remote=True), samples[:1], batch_size=1)  # deploys the model
        measured = {}
        for size in (args.batch_size, len(samples)):
            for method in ("naive", "reuse"):
                measured[method, size] = timed_run(KnockoutProfile(method=method, **PROFILE), samples, size, replies)
            measured["lens", size] = timed_run(LensProfile(top_k=3), samples, size, replies)
        flight = timed_run(KnockoutProfile(method="naive", **PROFILE), samples, args.batch_size, replies, in_flight=3)
        two = samples[: 2 * args.batch_size]  # the first batch also carries the canary's request
        lens = run(LensProfile(top_k=3), ModelSpec("organism"), two, batch_size=args.batch_size)
        _, _, intervene = timed_run(HeadIntervention(lens, ks=(1, 2), alphas=(2.0,), n_random=2), two,
                                    args.batch_size, replies)
    finally:
        CONFIG.API.HOST, CONFIG.API.APIKEY = previous
        stack.down()
        shutil.rmtree(scratch, ignore_errors=True)
    naive = measured["naive", args.batch_size][0]
    settings = naive.sizes["pathway"] * naive.sizes["window"] * naive.sizes["layer"]
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}; local NDIF stack, sandboxed requests; "
          f"organism, {len(samples)} samples, {settings} knockout settings")
    for size in (args.batch_size, len(samples)):
        naive_s = measured["naive", size][1]
        for method, label in (("naive", "knockout --method naive"), ("reuse", "knockout --method reuse"),
                              ("lens", "lens profile (one trace per batch)")):
            _, seconds, batches = measured[method, size]
            print(f"batch {size}: {label}: {seconds:.1f} s ({seconds / naive_s:.2f}x naive); per batch "
                  f"{max(b for b, _ in batches):,} B at most, {batches[-1][1]} request(s)")
    print(f"knockout --method naive --in-flight 3, batch {args.batch_size}: {flight[1]:.1f} s "
          f"({flight[1] / measured['naive', args.batch_size][1]:.2f}x in-flight 1); identical data")
    print(f"intervene: per batch {max(b for b, _ in intervene):,} B at most, {intervene[-1][1]} requests "
          "(a run's first batch carries one more request, the canary's)")
    for size in (args.batch_size, len(samples)):  # each method against naive at the same batch size
        reference = measured["naive", size][0]
        for name in reference.data_vars:
            if reference[name].dtype.kind == "f":
                np.testing.assert_allclose(measured["reuse", size][0][name].values, reference[name].values, rtol=0,
                                           atol=TOLERANCE, err_msg=name)
    np.testing.assert_array_equal(flight[0].nssd.values, naive.nssd.values)
    assert intervene[-1][1] <= 2, intervene


if __name__ == "__main__":
    main()
