"""A synthetic timeline of any size, and a timer, for the UI and replay benchmarks.

``synthetic_events(tasks, steps)`` makes each task create, then run ``steps`` short steps between
sleeps, with a one-second block in the middle: about ``tasks * steps * 3`` events.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from loopviz.events import AnyEvent, Create, Ready, Resume, Suspend, Wait

MS = 1_000_000


def synthetic_events(tasks: int, steps: int, where: Callable[[int], str] = lambda _task: "",
                     ) -> list[AnyEvent]:  # fmt: skip
    """``where(task)`` is the await line of the task's sleeps."""
    events: list[AnyEvent] = []
    for task in range(1, tasks + 1):
        events.append(Create(task, task, f"worker-{task}", "worker", None, "synthetic.py:1"))
    for step in range(steps):
        base = (step + 1) * 10 * MS
        for task in range(1, tasks + 1):
            t = base + task * 100
            deadline = t + 10 * MS
            events.append(Resume(t, task))
            wait = Wait("sleep", "sleep 0.01s", deadline=deadline, where=where(task))
            events.append(Suspend(t + 50, task, wait))
            events.append(Ready(deadline, task, "sleep ended"))
    events.sort(key=lambda e: e.t)
    return events


def median_ms(action: Callable[[int], object], repeats: int = 30) -> float:
    """Median wall time of ``action(i)`` over ``repeats`` calls, in milliseconds."""
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        action(i)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3
