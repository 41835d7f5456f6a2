"""Throughput: events per second from the child to the parent, the child's slowdown, the parent's
backlog and memory, and the trace's size on disk, for a run of over a million events.

    python bench/throughput.py [--tasks 10000] [--steps 60] [--rounds 3]

The flood is ``tasks`` tasks each doing ``steps`` ``await asyncio.sleep(0)``: two events per step
(resume, suspend) plus the synthesized ready, about 3 × tasks × steps events in the trace. The
parent side is the one ``loopviz record`` runs (a Session polled every 50 ms, trace written as it
goes). Plain and recorded runs alternate; the flood times itself.

Backlog is what the parent holds that is not yet in the model and the trace: frames read but not
taken in, plus events waiting for the child's watermark. It is sampled at every poll.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from loopviz.events import Output
from loopviz.session import Session, Target

FLOOD = textwrap.dedent(
    """
    import asyncio, sys, time

    async def worker(steps):
        for _ in range(steps):
            await asyncio.sleep(0)

    async def main(tasks, steps):
        started = time.perf_counter()
        await asyncio.gather(*(worker(steps) for _ in range(tasks)))
        print(f"{time.perf_counter() - started:.6f}")

    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
    """
)


def plain_seconds(script: Path, tasks: int, steps: int) -> float:
    command = [sys.executable, str(script), str(tasks), str(steps)]
    return float(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def recorded(script: Path, tasks: int, steps: int, trace: Path) -> dict:
    session = Session(Target(script, [str(tasks), str(steps)]), trace)
    started = time.perf_counter()
    session.start()
    backlog = 0
    output = []
    while not session.finished:
        for event in session.poll(timeout=0.05):
            if isinstance(event, Output):
                output.append(event.text)
        backlog = max(backlog, session.backlog())
    wall = time.perf_counter() - started
    events = session.events_taken
    return {
        "wall": wall,
        "workload": float("".join(output)),
        "events": events,
        "rate": events / wall,
        "backlog": backlog,
        "bytes": trace.stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "flood.py"
        script.write_text(FLOOD)
        trace = Path(scratch) / "flood.jsonl"
        plain, runs = [], []
        for _ in range(options.rounds):
            plain.append(plain_seconds(script, options.tasks, options.steps))
            runs.append(recorded(script, options.tasks, options.steps, trace))
        zipped = Path(scratch) / "flood.jsonl.gz"
        with trace.open("rb") as source, gzip.open(zipped, "wb") as target:
            shutil.copyfileobj(source, target)
        gz_bytes = zipped.stat().st_size

    def med(key: str) -> float:
        return statistics.median(run[key] for run in runs)

    events = med("events")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"flood: {options.tasks:,} tasks × {options.steps} sleep(0), {events:,.0f} events; "
          f"median of {options.rounds} alternating rounds")  # fmt: skip
    plain_s, child_s = statistics.median(plain), med("workload")
    rows = [
        ("child → parent, start to last event stored", f"{med('rate'):,.0f} events/s"),
        ("child's own time, plain → recorded",
         f"{plain_s:.3f} s → {child_s:.3f} s ({child_s / plain_s:.2f}×)"),
        ("parent backlog, peak", f"{med('backlog'):,.0f} events"),
        ("parent peak memory (RSS, model included)", f"{peak_mb:,.0f} MB"),
        ("trace on disk, JSON Lines", f"{med('bytes') / events:.1f} bytes/event"),
        ("trace on disk, gzipped", f"{gz_bytes / events:.1f} bytes/event"),
    ]  # fmt: skip
    for label, value in rows:
        print(f"{label:<44} {value}")


if __name__ == "__main__":
    main()
