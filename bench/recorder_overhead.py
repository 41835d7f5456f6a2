"""Recorder overhead: each workload plain vs under ``loopviz record``, side by side.

    python bench/recorder_overhead.py [--rounds N] [WORKLOAD ...]

Runs are alternated (plain, recorded, plain, ...) so that a noisy shared machine hits both alike;
the workload times itself, so process start-up is not counted. Prints the median of each and
their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workloads import WORKLOADS  # noqa: E402


def run(command: list[str]) -> float:
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    options = parser.parse_args()
    script = str(HERE / "workloads.py")
    print(f"{'workload':<12} {'plain s':>9} {'recorded s':>11} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as scratch:
        trace = str(Path(scratch) / "bench.jsonl")
        for name in options.workloads:
            plain, recorded = [], []
            for _ in range(options.rounds):
                plain.append(run([sys.executable, script, name]))
                loopviz = [sys.executable, "-m", "loopviz", "record", script, "-o", trace]
                recorded.append(run([*loopviz, "--", name]))
            p, r = statistics.median(plain), statistics.median(recorded)
            print(f"{name:<12} {p:>9.4f} {r:>11.4f} {r / p:>6.2f}")


if __name__ == "__main__":
    main()
