"""A synthetic timeline of any size, and a timer, for the UI and replay benchmarks.

``synthetic_events(tasks, steps)`` makes each task create, then run ``steps`` short steps between
sleeps, with a one-second block in the middle: about ``tasks * steps * 3`` events.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

MS = 1_000_000


def synthetic_events(tasks: int, steps: int) -> list[dict]:
    events: list[dict] = []
    for task in range(1, tasks + 1):
        events.append({"t": task, "ev": "create", "task": task, "name": f"worker-{task}",
                       "coro": "worker", "parent": None, "where": "synthetic.py:1"})  # fmt: skip
    for step in range(steps):
        base = (step + 1) * 10 * MS
        for task in range(1, tasks + 1):
            t = base + task * 100
            deadline = t + 10 * MS
            events.append({"t": t, "ev": "resume", "task": task})
            events.append({"t": t + 50, "ev": "suspend", "task": task,
                           "waiting_on": {"kind": "sleep", "label": "sleep 0.01s",
                                          "deadline": deadline}})  # fmt: skip
            events.append({"t": deadline, "ev": "ready", "task": task, "cause": "sleep ended"})
    events.sort(key=lambda e: e["t"])
    return events


def median_ms(action: Callable[[int], object], repeats: int = 30) -> float:
    """Median wall time of ``action(i)`` over ``repeats`` calls, in milliseconds."""
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3
