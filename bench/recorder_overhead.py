"""Recorder overhead: each workload plain, under ``loopviz record`` (its native core, and its
pure-Python recorder) and under viztracer.

    python bench/recorder_overhead.py [--rounds N] [--uvloop] [WORKLOAD ...]

Runs are alternated (plain, loopviz, viztracer, plain, ...) so that a noisy shared machine hits
all alike; the workload times itself, so process start-up and writing the trace out at exit are not
counted. ``loopviz`` is the native core when it is built; ``loopviz-py`` the same run with
``LOOPVIZ_RECORDER=python``. Prints the median of each, the ratios to plain, and loopviz's
overhead as a share of viztracer's (the target is at most half). The viztracer column appears
when ``viztracer`` is installed next to this Python (``pip install viztracer`` in the benchmark's
environment only; it is not a loopviz dependency). ``--uvloop`` runs every workload on uvloop.

Echo is also run a second time as ``echo/heap``, with glibc's malloc thresholds pinned for every
tool alike. Its socket reads allocate 256 KiB buffers, which glibc serves by mmap (a page-faulting
system call pair per read) or from the heap, depending on what the process allocated and freed
before: any code loaded first (the recorder's, a tracer's) can move that threshold, and the
workload's time by ±40%. Pinned, the row shows what recording itself costs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from workloads import WORKLOADS  # noqa: E402

# Workloads whose time depends on glibc's malloc state (see the docstring), and the pinning.
HEAP_SENSITIVE = {"echo"}
STEADY_HEAP = {"MALLOC_MMAP_THRESHOLD_": "4194304", "MALLOC_TRIM_THRESHOLD_": "134217728"}


def run(command: list[str], env: dict[str, str]) -> float:
    """The seconds the workload printed (the first line that is a number: tools add their own)."""
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    for line in result.stdout.splitlines():
        try:
            return float(line.strip())
        except ValueError:
            continue
    raise RuntimeError(f"no timing in the output of {command}:\n{result.stdout}")


def viztracer_command() -> list[str] | None:
    found = shutil.which("viztracer", path=str(Path(sys.executable).parent))
    return [found, "--quiet", "--log_async"] if found else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--uvloop", action="store_true", help="run the workloads on uvloop")
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    options = parser.parse_args()
    script = str(HERE / "workloads.py")
    env = {**os.environ, "LOOPVIZ_BENCH_LOOP": "uvloop" if options.uvloop else "asyncio"}
    viztracer = viztracer_command()
    python = sys.version.split()[0]
    print(f"Python {python}, {'uvloop' if options.uvloop else 'asyncio'} loop, "
          f"median of {options.rounds} alternating rounds")  # fmt: skip
    header = f"{'workload':<12} {'plain s':>8} {'loopviz':>8} {'ratio':>6}"
    header += f" {'loopviz-py':>10} {'ratio':>6}"
    if viztracer:
        header += f" {'viztracer':>9} {'ratio':>6} {'overhead share':>14}"
    print(header)
    with tempfile.TemporaryDirectory() as scratch:
        trace = str(Path(scratch) / "bench.jsonl")
        record = [sys.executable, "-m", "loopviz", "record", script, "-o", trace, "--"]
        python_env = {**env, "LOOPVIZ_RECORDER": "python"}
        commands = {
            "plain": ([sys.executable, script], env),
            "loopviz": (record, env),
            "loopviz-py": (record, python_env),
        }
        if viztracer:
            viz = [*viztracer, "-o", str(Path(scratch) / "viz.json"), script]
            commands["viztracer"] = (viz, env)
        rows = [(name, name, {}) for name in options.workloads]
        rows += [(f"{name}/heap", name, STEADY_HEAP) for name in options.workloads
                 if name in HEAP_SENSITIVE]  # fmt: skip
        for label, name, heap in rows:
            times: dict[str, list[float]] = {tool: [] for tool in commands}
            for _ in range(options.rounds):
                for tool, (command, tool_env) in commands.items():
                    times[tool].append(run([*command, name], {**tool_env, **heap}))
            median = {tool: statistics.median(samples) for tool, samples in times.items()}
            plain = median["plain"]
            ratio = median["loopviz"] / plain
            python_ratio = median["loopviz-py"] / plain
            line = (
                f"{label:<12} {plain:>8.4f} {median['loopviz']:>8.4f} {ratio:>5.2f}×"
                f" {median['loopviz-py']:>10.4f} {python_ratio:>5.2f}×"
            )
            if viztracer:
                viz_ratio = median["viztracer"] / plain
                share = (ratio - 1) / (viz_ratio - 1) if viz_ratio > 1 else float("nan")
                line += f" {median['viztracer']:>9.4f} {viz_ratio:>5.2f}× {share:>13.0%}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
