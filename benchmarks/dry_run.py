"""How close ``--dry-run``'s memory estimate comes to the measured peak, on the medium benchmark model
(random Qwen2.5-VL, 12 layers × 1024 wide, batch 8, a 224×224 image per sample; ``run.py``).

For each analysis: the dry run's estimate of what a batch holds above the weights, and of the
whole peak (weights included), beside the measured peak of the run's first batch, in a fresh
process per case. On the CPU the measure is the peak resident memory (sampled every 0.2 ms) above
what the process held before the weights loaded: resident, not live heap as ``run.py`` measures,
since the weights are mapped from their files rather than allocated; with ``--device cuda``,
``torch.cuda.max_memory_allocated``. The script fails when an estimate of the whole peak
is off by more than 2× either way.

    .venv/bin/python benchmarks/dry_run.py [--device cuda] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import threading
import time
import warnings
from typing import Any

import torch

import psutil
from run import medium_folder, samples

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "lens profile (all layers, sites, heads)": ("LensProfile", {"top_k": 3}),
    "knockout, naive (12 settings)": ("KnockoutProfile", {"method": "naive", "windows": (3,),
                                                          "pathways": ("visual->instruction", "cues->instruction")}),
    "knockout, reuse (12 settings, 64 rows stacked)": ("KnockoutProfile", {
        "method": "reuse", "windows": (3,), "pathways": ("visual->instruction", "cues->instruction"), "max_batch_rows": 64}),
}
BATCH = 8


def estimate(case: str, device: str) -> tuple[int, int]:
    """(weights, peak) bytes by the dry run."""
    import anchors

    name, options = CASES[case]
    planned = anchors.dry_run(getattr(anchors, name)(**options), anchors.ModelSpec(str(medium_folder())),
                              samples("medium", BATCH), batch_size=BATCH)
    return planned.weights_bytes, planned.peak_bytes


def measure(case: str, device: str) -> int:
    """In a fresh process: the peak bytes while the case's batch runs, weights included."""
    import anchors

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    name, options = CASES[case]
    data = samples("medium", BATCH)
    if device == "cuda":
        loaded = anchors.ModelSpec(str(medium_folder()), device_map="cuda").load()
        torch.cuda.reset_peak_memory_stats()
        anchors.run(getattr(anchors, name)(**options), loaded, data, batch_size=BATCH)
        return torch.cuda.max_memory_allocated()
    process = psutil.Process()
    baseline, peak, done = process.memory_info().rss, [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.0002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        loaded = anchors.ModelSpec(str(medium_folder())).load()
        anchors.run(getattr(anchors, name)(**options), loaded, data, batch_size=BATCH)
    finally:
        done.set()
        sampler.join()
    return peak[0] - baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    medium_folder()
    spawn = multiprocessing.get_context("spawn")
    rows = {}
    for case in CASES:
        with spawn.Pool(1, maxtasksperchild=1) as pool:
            weights, planned = pool.apply(estimate, (case, args.device))
        with spawn.Pool(1, maxtasksperchild=1) as pool:
            measured = pool.apply(measure, (case, args.device))
        rows[case] = {"estimated_MB": planned / 2**20, "measured_MB": measured / 2**20, "weights_MB": weights / 2**20,
                      "ratio": planned / measured}
        print(f"{case:48s} estimated {planned / 2**20:8.1f} MB  measured {measured / 2**20:8.1f} MB  "
              f"({planned / measured:.2f}x; weights {weights / 2**20:.1f} MB)")
    machine = {"device": torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu",
               "torch": torch.__version__}
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": machine, "cases": rows}, f, indent=1)
    off = [case for case, row in rows.items() if not 0.5 <= row["ratio"] <= 2.0]
    if off:
        raise SystemExit(f"estimates off by more than 2x: {off}")


if __name__ == "__main__":
    main()
