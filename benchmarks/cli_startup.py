"""How long the command line takes to answer without doing work: ``anchors --help``, a command's
help, and an argument error (median of repeated subprocess runs, so Python's own start is included).

    .venv/bin/python benchmarks/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ANCHORS = str(Path(sys.executable).with_name("anchors"))
CASES = {"anchors --help": ["--help"], "anchors knockout --help": ["knockout", "--help"],
         "anchors knockout --no-such-flag": ["knockout", "--no-such-flag"],
         "python -c pass (interpreter start alone)": None}


def median_seconds(argv: list[str] | None, repeats: int) -> float:
    command = [sys.executable, "-c", "pass"] if argv is None else [ANCHORS, *argv]
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])  # the first run warms the file cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for name, argv in CASES.items():
        print(f"{name:45s} {median_seconds(argv, args.repeats):6.3f} s")


if __name__ == "__main__":
    main()
