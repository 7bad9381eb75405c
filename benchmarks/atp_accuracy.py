"""How well the attribution-patching knockout profile ranks settings, against the exact profile.

    .venv/bin/python benchmarks/atp_accuracy.py [--samples 32]

On every shipped organism, for held-in and held-out wordings: the knockout profile (six pathways ×
every layer) by ``reuse`` (exact), ``atp`` and ``atp+verify`` (two settings verified per
pathway); over (pathway, layer) means of NSSD, the Spearman rank correlation with the exact
profile and the recall of the exact top-5 settings (by |mean NSSD|), per window. Written to the
``atp_accuracy`` entry of ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from anchors.datasets import to_traced, tokenise
from anchors.experiments import KnockoutProfile
from anchors.organism import ORGANISMS, load_organism
from anchors.organism.task import dictionaries, evaluation_set, to_modality_samples
from anchors.runner import run

RESULTS = Path(__file__).with_name("results.json")
WINDOWS = (1, 3, 9)


def agreement(exact: np.ndarray, estimate: np.ndarray, top: int = 5) -> dict[str, float]:
    """Spearman ρ (Pearson correlation of ranks) and the recall of the exact top settings."""
    rho = pd.Series(exact).rank().corr(pd.Series(estimate).rank())
    best = set(np.argsort(-np.abs(exact))[:top])
    return {"spearman": round(float(rho), 3), "top5_recall": len(best & set(np.argsort(-np.abs(estimate))[:top])) / top}


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    table = {}
    for name in ORGANISMS:
        loaded = load_organism(name)
        for held_out in (False, True):
            examples = evaluation_set(args.samples, 5, held_out=held_out, prefix="a")
            samples = to_traced(tokenise(to_modality_samples(examples, tempfile.mkdtemp()), dictionaries(),
                                         loaded.adapter.tokenizer)[0])
            profiles = {method: run(KnockoutProfile(windows=WINDOWS, method=method, verify_top=2), loaded, samples,
                                    batch_size=16).nssd.mean("sample")
                        for method in ("reuse", "atp", "atp+verify")}
            wording = "held-out" if held_out else "held-in"
            for method in ("atp", "atp+verify"):
                for window in WINDOWS:
                    row = agreement(profiles["reuse"].sel(window=window).values.ravel(),
                                    profiles[method].sel(window=window).values.ravel())
                    table[f"{name} {wording} {method} window {window}"] = row
                    print(f"{name:11s} {wording:8s} {method:10s} window {window}: ρ {row['spearman']:5.2f}  "
                          f"top-5 recall {row['top5_recall']:.1f}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["atp_accuracy"] = table
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
