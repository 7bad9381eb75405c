"""How long the command line takes to answer without doing work: ``anchors --help``, a command's
help, an argument error, and the cheap refusals a first run meets (a missing data folder, an
unknown pathway, a result of the wrong kind, an output already complete), and a dry run's plan
(``--dry-run``, which reads the processor and the data and must leave nothing): the median of repeated
subprocess runs, so Python's own start is included. Each refusal must exit 2 (the complete output
0) and leave no output or ``.parts`` folder behind; the script fails otherwise.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anchors.organism.task import write_data

ANCHORS = str(Path(sys.executable).with_name("anchors"))
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"


def cases(root: Path) -> dict[str, tuple[list[str] | None, int]]:
    """name -> (arguments, the exit code expected); None: the interpreter alone."""
    data, out = str(root / "data"), str(root / "refused" / "x.nc")
    return {
        "anchors --help": (["--help"], 0),
        "anchors knockout --help": (["knockout", "--help"], 0),
        "anchors knockout --no-such-flag": (["knockout", "--no-such-flag"], 2),
        "lens --data /nonexistent": (["lens", "--data", "/nonexistent", "--out", out], 2),
        "knockout --pathways foo": (["knockout", "--data", data, "--pathways", "foo", "--out", out], 2),
        "intervene --lens <a knockout result>": (
            ["intervene", "--data", data, "--lens", str(FIXTURES / "knockout.nc"), "--out", out], 2),
        "lens, output already complete": (["lens", "--data", data, "--no-heads", "--out", str(root / "lens.nc")], 0),
        "knockout --method reuse --dry-run": (["knockout", "--data", data, "--method", "reuse", "--dry-run", "--out",
                                               str(root / "planned.nc")], 0),
        "python -c pass (interpreter start alone)": (None, 0),
    }


def median_seconds(argv: list[str] | None, expected: int, repeats: int) -> float:
    command = [sys.executable, "-c", "pass"] if argv is None else [ANCHORS, *argv, "--quiet"] if argv[-1] != "--help" \
        and "--no-such-flag" not in argv else [ANCHORS, *argv]
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != expected:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode}, expected {expected}:\n{done.stderr}")
    return statistics.median(times[1:])  # the first run warms the file cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        write_data(root / "data", 4)
        subprocess.run([ANCHORS, "lens", "--data", str(root / "data"), "--no-heads", "--out", str(root / "lens.nc"),
                        "--quiet"], check=True, capture_output=True)
        for name, (argv, expected) in cases(root).items():
            print(f"{name:45s} {median_seconds(argv, expected, args.repeats):6.3f} s  (exit {expected})")
        left = [p.name for p in root.iterdir() if p.name not in ("data", "lens.nc")]
        if left:
            raise SystemExit(f"the refusals left {left} behind")


if __name__ == "__main__":
    main()
