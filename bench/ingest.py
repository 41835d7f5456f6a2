"""The parent's side of throughput alone: a flood's frames, recorded once, taken in again and
again in this process, stage by stage (decode, merger, model, trace), in CPU time.

    python bench/ingest.py [--tasks 10000] [--steps 60] [--rounds 3]

``bench/throughput.py`` measures the whole path with the child running beside the parent, which
on a shared 2-core machine mostly measures the machine's load. This measures what the parent
costs per child event, as ``Session`` does it: frames decoded, merged, fed to a model capped at
``MAX_MODEL_EVENTS`` (only SUMMARY_KINDS past the cap), and written to a trace. It reports the
median of its rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from throughput import FLOOD

from loopviz import wire
from loopviz.decoding import decode_frame
from loopviz.events import AnyEvent
from loopviz.merger import ChildExit, Merger
from loopviz.model import Timeline
from loopviz.session import MAX_MODEL_EVENTS, SUMMARY_KINDS
from loopviz.trace import TraceWriter

STAGES = ("decode", "merger", "model", "trace")


def record_frames(scratch: Path, tasks: int, steps: int) -> list[bytes]:
    """Run the flood under the recorder, its event pipe a file; return the frames' bodies."""
    script, frames = scratch / "flood.py", scratch / "frames.bin"
    script.write_text(FLOOD)
    fd = os.open(frames, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    command = [sys.executable, "-m", "loopviz.recorder", "--events-fd", str(fd),
               str(script), str(tasks), str(steps)]  # fmt: skip
    subprocess.run(command, pass_fds=(fd,), check=True, capture_output=True)
    os.close(fd)
    data, bodies, i = frames.read_bytes(), [], 0
    while i < len(data):
        (length,) = wire.FRAME_HEADER.unpack_from(data, i)
        bodies.append(data[i + 4 : i + 4 + length])
        i += 4 + length
    return bodies


def one_round(bodies: list[bytes], trace: Path) -> tuple[int, dict[str, float]]:
    clock = time.process_time
    spent = dict.fromkeys(STAGES, 0.0)
    merger, timeline = Merger(), Timeline()
    writer = TraceWriter(trace, {"scenario": "flood"})
    taken = 0

    def store(events: list[AnyEvent]) -> None:
        started = clock()
        room = max(MAX_MODEL_EVENTS - len(timeline.events), 0)
        timeline.add_events(events[:room])
        timeline.add_events([e for e in events[room:] if isinstance(e, SUMMARY_KINDS)])
        written = clock()
        writer.write(events)
        writer.flush()
        spent["model"] += written - started
        spent["trace"] += clock() - written

    for body in bodies:
        started = clock()
        watermark, events = decode_frame(body)
        decoded = clock()
        merger.take_frame(watermark, events)
        released = merger.release()
        spent["decode"] += decoded - started
        spent["merger"] += clock() - decoded
        taken += len(events)
        store(released)
    merger.finish(ChildExit(at=time.perf_counter_ns(), started_at=0, status=0, reason=None,
                            killed=False))  # fmt: skip
    store(merger.release())
    writer.close()
    return taken, spent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bodies = record_frames(Path(scratch), options.tasks, options.steps)
        rounds = [one_round(bodies, Path(scratch) / "flood.jsonl") for _ in range(options.rounds)]
    events = rounds[0][0]
    print(f"flood: {events:,} child events in {len(bodies)} frames; parent side in process, "
          f"CPU time, median of {options.rounds} rounds")  # fmt: skip
    for stage in STAGES:
        seconds = statistics.median(spent[stage] for _n, spent in rounds)
        print(f"{stage:<8} {seconds:6.3f} s   {events / seconds:>12,.0f} child events/s")
    total = statistics.median(sum(spent.values()) for _n, spent in rounds)
    print(f"{'all':<8} {total:6.3f} s   {events / total:>12,.0f} child events/s")


if __name__ == "__main__":
    main()
