"""Replay: a cursor that moves through a recorded timeline, and what the screen says about it.

Pure Python, no UI import. The cursor is an event index plus a time; every move is a bisection
or an index step, so any position in a trace of any size is reached in O(log n). What the app
shows at the cursor (the plain-words account of the event, the loop's ready queue and timers)
is computed here from the model alone, so a replay of the same trace always reads the same.
"""

from __future__ import annotations

import heapq
import json
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loopviz import model
from loopviz.model import Timeline
from loopviz.units import clock, duration

SPEEDS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
QUEUE_SHOWN = 8  # ready tasks and timers listed in the loop panel
CHECKPOINT_EVERY = 10_000  # events between saved loop-queue states


@dataclass(frozen=True)
class LoopState:
    """The loop at one instant, as drawn on a whiteboard."""

    doing: str
    ready: list[str]  # tasks that could run, in the order they became ready
    timers: list[str]  # pending sleeps, soonest first


class Replay:
    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self.index = -1  # the event at the cursor; -1 = before the first
        self.speed = 1.0
        self._task_events: dict[int, array] | None = None  # task -> its event indices
        self._indexed = 0
        self._queue_cache: tuple[int, dict[int, int], dict[int, int]] | None = None
        # event index -> the queues after it: (ready tasks, since, sleeping tasks, deadlines)
        self._checkpoints: dict[int, tuple[array, array, array, array]] = {}
        self.seek_index(0 if timeline.events else -1)

    # -- moving ---------------------------------------------------------------------------

    @property
    def time(self) -> int:
        return self.timeline.cursor or 0

    @property
    def event(self) -> dict | None:
        events = self.timeline.events
        return events[self.index] if 0 <= self.index < len(events) else None

    def seek_index(self, index: int) -> None:
        events = self.timeline.events
        self.index = min(max(index, -1), len(events) - 1)
        self.timeline.cursor = events[self.index]["t"] if self.index >= 0 else 0

    def seek_time(self, t: int) -> None:
        """Put the cursor at ``t``; the event at the cursor is the last one at or before it."""
        t = min(max(t, 0), self.timeline.end_t)
        self.index = bisect_right(self.timeline.times, t) - 1
        self.timeline.cursor = t

    def step(self, delta: int) -> None:
        self.seek_index(self.index + delta)

    def step_task(self, task_id: int, delta: int) -> bool:
        """Move to the selected task's next (or previous) event. False if there is none."""
        indices = self._events_of(task_id)
        if delta > 0:
            i = bisect_right(indices, self.index)
            found = indices[i] if i < len(indices) else None
        else:
            i = bisect_left(indices, self.index) - 1
            found = indices[i] if i >= 0 else None
        if found is None:
            return False
        self.seek_index(found)
        return True

    def _events_of(self, task_id: int) -> Sequence[int]:
        if self._task_events is None or len(self.timeline.events) != self._indexed:
            table: dict[int, array] = {}
            for i, event in enumerate(self.timeline.events):
                task = event.get("task")
                if task is not None:
                    indices = table.get(task)
                    if indices is None:
                        indices = table[task] = array("q")
                    indices.append(i)
            self._task_events, self._indexed = table, len(self.timeline.events)
        return self._task_events.get(task_id, ())

    def next_block(self) -> bool:
        """Jump to the start of the next block after the cursor. False if there is none."""
        for block in self.timeline.blocks:
            if block.start > self.time:
                self.seek_time(block.start)
                return True
        return False

    def play_tick(self, wall_seconds: float) -> bool:
        """Advance by ``wall_seconds`` of play at the current speed. False at the end."""
        if self.time >= self.timeline.end_t:
            return False
        self.seek_time(self.time + int(wall_seconds * self.speed * 1e9))
        return True

    def change_speed(self, faster: bool) -> float:
        i = SPEEDS.index(self.speed) if self.speed in SPEEDS else SPEEDS.index(1.0)
        i = min(i + 1, len(SPEEDS) - 1) if faster else max(i - 1, 0)
        self.speed = SPEEDS[i]
        return self.speed

    # -- reading --------------------------------------------------------------------------

    def explain(self) -> str:
        """The event at the cursor, in plain words."""
        event = self.event
        if event is None:
            return "Nothing has happened yet."
        return explain_event(self.timeline, event)

    def loop_state(self) -> LoopState:
        timeline = self.timeline
        t = self.time
        block = timeline.current_block()
        running = timeline.running_at(t) if block is None else []
        if block is not None:
            culprit = f": {block.code}" if block.code else ""
            doing = f"blocked by {timeline.display_name(block.task)}{culprit}"
        elif running:
            doing = f"running a step of {running[0].label}"
        elif _span_state(timeline.loop, t) == model.IDLE:
            doing = "waiting in select() for I/O or a timer"
        elif timeline.ended and t >= timeline.end_t:
            doing = "finished"
        else:
            doing = "between steps (running callbacks)"
        ready, timers = self._queues()
        # An old trace may lack ready events: a timer already past is a ready task.
        due = [(deadline, task) for task, deadline in timers.items() if deadline <= t]
        first_ready = heapq.nsmallest(QUEUE_SHOWN, [*((s, k) for k, s in ready.items()), *due])
        pending = heapq.nsmallest(QUEUE_SHOWN, ((d, k) for k, d in timers.items() if d > t))
        name = timeline.display_name
        return LoopState(
            doing=doing,
            ready=[name(task) for _since, task in first_ready],
            timers=[f"{name(task)} at {clock(deadline)}" for deadline, task in pending],
        )

    def _queues(self) -> tuple[dict[int, int], dict[int, int]]:
        """(ready task -> since, sleeping task -> deadline) after the event at the cursor.

        Built by applying events from the nearest known state at or before the cursor: the last
        answer when stepping forward, else a checkpoint kept every CHECKPOINT_EVERY events. So a
        step costs what the step changes, and any other move at most CHECKPOINT_EVERY events,
        however many tasks and events the trace holds."""
        target = self.index
        start, ready, timers = -1, {}, {}
        last = self._queue_cache
        if last is not None and last[0] <= target:
            start, ready, timers = last
        checkpoint_at = (target // CHECKPOINT_EVERY) * CHECKPOINT_EVERY - 1
        if start < checkpoint_at and checkpoint_at in self._checkpoints:
            ready_tasks, since, sleeping_tasks, deadlines = self._checkpoints[checkpoint_at]
            start = checkpoint_at
            ready = dict(zip(ready_tasks, since, strict=True))
            timers = dict(zip(sleeping_tasks, deadlines, strict=True))
        events = self.timeline.events.iter_range(start + 1, target + 1)
        for i, event in enumerate(events, start + 1):
            _apply_to_queues(event, ready, timers)
            if (i + 1) % CHECKPOINT_EVERY == 0 and i not in self._checkpoints:
                # int64 columns: a tenth of the memory of two dicts of int objects
                columns = (ready, ready.values(), timers, timers.values())
                self._checkpoints[i] = tuple(array("q", column) for column in columns)
        self._queue_cache = (target, ready, timers)
        return ready, timers


def _apply_to_queues(event: dict, ready: dict[int, int], timers: dict[int, int]) -> None:
    kind = event["ev"]
    task = event.get("task")
    if kind in ("create", "ready"):
        ready[task] = event["t"]
        timers.pop(task, None)
    elif kind in ("resume", "done"):
        ready.pop(task, None)
        timers.pop(task, None)
    elif kind == "suspend":
        deadline = event["waiting_on"].get("deadline")
        if deadline is not None:
            timers[task] = deadline


def _span_state(lane: model.Lane, t: int) -> str | None:
    span = lane.span_at(t)
    return span.state if span is not None else None


def explain_event(timeline: Timeline, event: dict) -> str:
    kind = event["ev"]
    name = timeline.display_name(event.get("task")) if "task" in event else ""
    t = event["t"]
    if kind == "create":
        parent = f"{timeline.display_name(event['parent'])} creates" if event["parent"] else (
            "asyncio.run creates"
        )  # fmt: skip
        site = _short(event["where"])
        return f"{parent} {name} ({event['coro']}() at {site}); it is ready to run"
    if kind == "resume":
        return _explain_resume(timeline, event, name)
    if kind == "suspend":
        wait = event["waiting_on"]
        until = f" until {clock(wait['deadline'])}" if "deadline" in wait else ""
        where = f" at {_short(wait['where'])}" if wait.get("where") else ""
        return f"{name} awaits{where}: it waits on {wait['label']}{until} and gives the loop back"
    if kind == "ready":
        block = _block_at(timeline, t)
        slept = event.get("cause") == "sleep ended"
        why = "its sleep ended" if slept else "what it awaited is done"
        if block is not None:
            return f"{name} is ready ({why}), but the loop is blocked: {name} is starved"
        return f"{name} is ready ({why}); it runs when the loop gets to it"
    if kind == "done":
        outcome = {"returned": "returns", "raised": "raises", "cancelled": "is cancelled"}
        detail = f" {event['detail']}" if event.get("detail") else ""
        return f"{name} {outcome.get(event['outcome'], event['outcome'])}{detail}: it is done"
    if kind in ("block_begin", "block"):
        return _explain_block(timeline, event, name)
    if kind == "thread_start":
        return f"worker thread {event['thread']} starts {event['func']} for {name}"
    if kind == "thread_end":
        return f"worker thread {event['thread']} finishes {event['func']} for {name}"
    if kind == "idle":
        return f"the loop waited {duration(t - event['start'])} in select(): nothing was ready"
    if kind == "output":
        text = event["text"].rstrip("\n").splitlines()
        return f"the program writes to {event['stream']}: {text[-1] if text else ''}"
    if kind == "loop":
        return f"the event loop starts ({event['impl']})"
    if kind == "source":
        return f"the recording notes {event.get('file', '?')} and its digest, to check it later"
    if kind == "rename":
        return f"task {event['task']} is renamed {event['name']}"
    if kind == "unretrieved":
        return f"{name} raised {event['detail']} and nobody ever retrieved the exception"
    if kind == "end":
        error = f" ({event['error']})" if event.get("error") else ""
        return f"the program ends with exit status {event['exit_code']}{error}"
    return kind


def _explain_resume(timeline: Timeline, event: dict, name: str) -> str:
    lane = timeline.tasks.get(event["task"])
    if lane is None:
        return f"{name} resumes"
    i = bisect_left(lane.starts, event["t"]) - 1
    before = lane.spans[i] if i >= 0 else None
    if before is not None and before.state == model.READY and i >= 1:
        waited = lane.spans[i - 1]
        if waited.state == model.WAITING and waited.label.startswith("sleep"):
            late = event["t"] - before.start
            lateness = f", {duration(late, 2)} late" if late >= 1_000_000 else ""
            return (
                f"{name} resumes: its {waited.label[6:]} sleep ended at {clock(before.start)}"
                f"{lateness}"
            )
        if waited.state == model.WAITING:
            return f"{name} resumes: {waited.label} is done"
    if before is not None and before.label == "scheduled":
        return f"{name} runs for the first time"
    return f"{name} resumes"


def _explain_block(timeline: Timeline, event: dict, name: str) -> str:
    culprit = f"{event['code']} at {_short(event['where'])}" if event["where"] else "unknown code"
    block = next((b for b in timeline.blocks if b.start == event["start"]), None)
    starved = 0
    if block is not None:
        saved = timeline.cursor
        timeline.cursor = block.end if block.end is not None else timeline.end_t
        starved = len(timeline.starved(block))
        timeline.cursor = saved
    tasks = f"; {starved} task{'s are' if starved != 1 else ' is'} starved" if starved else ""
    if event["ev"] == "block_begin":
        return f"{name} blocks the loop: {culprit}{tasks}"
    length = duration(event["end"] - event["start"], 2)
    return f"the loop is free again after {length}: {name} held it with {culprit}{tasks}"


def _block_at(timeline: Timeline, t: int) -> model.Block | None:
    for block in timeline.blocks:
        if block.start <= t and (block.end is None or t < block.end):
            return block
    return None


def _short(where: str) -> str:
    return where.rsplit("/", 1)[-1]


class Bookmarks:
    """Moments a user marked, saved beside the trace as ``TRACE.marks.json``."""

    def __init__(self, trace_path: Path | None) -> None:
        self.path = Path(f"{trace_path}.marks.json") if trace_path else None
        self.times: list[int] = []
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text())
                self.times = sorted(int(t) for t in data.get("marks", []))
            except (ValueError, TypeError, AttributeError, OSError):
                self.times = []  # a damaged marks file is not worth failing a replay for

    def toggle(self, t: int) -> bool:
        """Mark ``t``, or unmark it if marked. Returns True if it is now marked."""
        if t in self.times:
            self.times.remove(t)
            marked = False
        else:
            self.times.insert(bisect_left(self.times, t), t)
            marked = True
        self._save()
        return marked

    def next_after(self, t: int) -> int | None:
        i = bisect_right(self.times, t)
        return self.times[i] if i < len(self.times) else None

    def previous_before(self, t: int) -> int | None:
        i = bisect_left(self.times, t) - 1
        return self.times[i] if i >= 0 else None

    def _save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps({"marks": self.times}))
