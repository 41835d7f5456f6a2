"""Replay speed on a big trace: seeking, stepping and reading the panels at the cursor.

    python bench/replay_steps.py [--tasks 10000] [--steps 33]

Builds a synthetic timeline (~1,000,000 events at the defaults), then times, per operation, the
median over many random positions: seek to a time, step one event, step the selected task, and
compute what the panels show (the explanation and the loop's state). Stepping "feels instant"
when a step and its panels together stay well under a 16 ms frame.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import median_ms, synthetic_events  # noqa: E402

from loopviz.model import Timeline  # noqa: E402
from loopviz.replay import Replay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=33)
    options = parser.parse_args()
    started = time.perf_counter()
    events = synthetic_events(options.tasks, options.steps)
    timeline = Timeline()
    timeline.add_events(events)
    timeline.ended = True
    built = time.perf_counter() - started
    replay = Replay(timeline)
    rng = random.Random(7)
    end = timeline.end_t
    print(f"{len(events):,} events, {options.tasks:,} tasks; model built in {built:.1f} s")

    def step_and_read(delta: int) -> None:
        replay.step(delta)
        replay.explain()
        replay.loop_state()

    def seek_and_read() -> None:
        replay.seek_time(rng.randrange(end))
        replay.explain()
        replay.loop_state()

    rows = [
        ("seek to a random time", lambda: replay.seek_time(rng.randrange(end))),
        ("step one event", lambda: replay.step(rng.choice((-1, 1)))),
        ("step the selected task", lambda: replay.step_task(rng.randrange(1, 50), 1)),
        ("explain the event", replay.explain),
        ("step → + both panels", lambda: step_and_read(1)),
        ("step ← + both panels", lambda: step_and_read(-1)),
        ("seek + both panels", seek_and_read),
    ]
    replay.seek_index(len(events) // 2)
    replay.step_task(1, 1)  # build the per-task index once, as the first shift-arrow does
    replay.seek_index(0)
    replay.loop_state()
    replay.seek_index(len(events) - 1)
    replay.loop_state()  # one pass over the trace leaves the checkpoints in place
    for label, action in rows:
        took = median_ms(lambda _i, act=action: act(), 200)
        print(f"{label:<34} {took:8.3f} ms (median)")


if __name__ == "__main__":
    main()
