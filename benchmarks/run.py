"""Trace overhead on the shipped organism: plain forward vs the toolkit's traces (median of repeats).

    make bench        # or: .venv/bin/python benchmarks/run.py [--batch 32] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from anchors.datasets import to_traced, tokenise
from anchors.interventions import HeadScale, Knockout
from anchors.organism import load_organism
from anchors.organism.task import dictionaries, evaluation_set, to_modality_samples
from anchors.tracer import encode_samples, trace_batch


def median_ms(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(2)
    loaded = load_organism()
    import tempfile

    samples = to_modality_samples(evaluation_set(args.batch, 5, held_out=False, prefix="b"), tempfile.mkdtemp())
    traced = to_traced(tokenise(samples, dictionaries(), loaded.adapter.tokenizer)[0])
    batch, space = encode_samples(loaded.adapter, traced)
    cases = {
        "plain forward (no nnsight)": lambda: loaded.module(**batch.inputs),
        "trace: answer logits only": lambda: trace_batch(loaded, batch, space),
        "trace: + knockout (window 3)": lambda: trace_batch(loaded, batch, space, [Knockout("cues", "instruction", 2, 3)]),
        "trace: + head scaling (12 heads)": lambda: trace_batch(loaded, batch, space, [HeadScale(tuple((l, h) for l in (1, 2) for h in range(6)), 0.0)]),
        "trace: lens readouts (3 sites x 6 layers)": lambda: trace_batch(loaded, batch, space, lens=True),
        "trace: lens + per-head readouts": lambda: trace_batch(loaded, batch, space, lens=True, heads=True),
    }
    print(f"organism qwen2_5_vl, batch {args.batch}, sequence {batch.roles.shape[1]}, {torch.get_num_threads()} threads")
    with torch.no_grad():
        base = None
        for name, run in cases.items():
            ms = median_ms(run, args.repeats)
            base = base or ms
            print(f"{name:45s} {ms:8.1f} ms  ({ms / base:4.2f}x)")


if __name__ == "__main__":
    main()
