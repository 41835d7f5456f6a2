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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from loopviz import events as ev
from loopviz import model
from loopviz.model import Timeline
from loopviz.units import clock, duration
from loopviz.viewstate import ViewState

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
        self.time = 0  # the cursor: the instant shown (at or after the event at the cursor)
        self.speed = 1.0
        self._task_events: dict[int, array[int]] | None = None  # task -> its event indices
        self._indexed = 0
        self.queues = Queues(timeline)
        self._key_moments: tuple[int, list[KeyMoment]] | None = None
        self.seek_index(0 if timeline.events else -1)

    # -- moving ---------------------------------------------------------------------------

    @property
    def view(self) -> ViewState:
        """The timeline as it stood at the cursor."""
        return ViewState(self.timeline.end_t, self.time, recording=not self.timeline.ended)

    @property
    def event(self) -> ev.AnyEvent | None:
        events = self.timeline.events
        return events[self.index] if 0 <= self.index < len(events) else None

    def seek_index(self, index: int) -> None:
        events = self.timeline.events
        self.index = min(max(index, -1), len(events) - 1)
        self.time = events[self.index].t if self.index >= 0 else 0

    def seek_time(self, t: int) -> None:
        """Put the cursor at ``t``; the event at the cursor is the last one at or before it."""
        t = min(max(t, 0), self.timeline.end_t)
        self.index = bisect_right(self.timeline.times, t) - 1
        self.time = t

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
            table: dict[int, array[int]] = {}
            for i, event in enumerate(self.timeline.events):
                task = ev.task_of(event)
                if task is not None:
                    indices = table.get(task)
                    if indices is None:
                        indices = table[task] = array("q")
                    indices.append(i)
            self._task_events, self._indexed = table, len(self.timeline.events)
        return self._task_events.get(task_id, ())

    def next_block(self) -> bool:
        """Jump to the next block after the cursor, where a viewer first saw it as one: its
        ``block_begin`` (the watchdog's word), or the threshold past its start. False if none."""
        timeline = self.timeline
        for block in timeline.blocks:
            seen = block.start + timeline.block_threshold_ns
            if block.end is not None:
                seen = min(seen, block.end)
            if seen <= self.time:
                continue
            self.seek_time(seen)
            events = timeline.events
            for i in range(self.index + 1, min(self.index + 50, len(events))):
                event = events[i]
                if isinstance(event, ev.BlockBegin) and event.start == block.start:
                    self.seek_index(i)
                    break
            return True
        return False

    def key_moments(self) -> list[KeyMoment]:
        """The moments a lesson stops at (see key_moments)."""
        return key_moments(self.timeline)

    def next_key_moment(self) -> KeyMoment | None:
        """Go to the first key moment after the cursor (back to the first after the last)."""
        if self._key_moments is None or self._key_moments[0] != len(self.timeline.events):
            self._key_moments = (len(self.timeline.events), key_moments(self.timeline))
        found = self._key_moments[1]
        if not found:
            return None
        later = [k for k in found if (k.t, k.index) > (self.time, self.index)]
        chosen = later[0] if later else found[0]
        self.seek_index(chosen.index)
        if chosen.t > self.time:
            self.seek_time(chosen.t)
        return chosen

    def key_moment_here(self) -> KeyMoment | None:
        """The key moment the cursor is on, if any (its "why it matters" goes on screen)."""
        if self._key_moments is None:
            return None
        return next((k for k in self._key_moments[1]
                     if (k.index, k.t) == (self.index, self.time)), None)  # fmt: skip

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
        return self.moment().explanation

    def moment(self) -> Moment:
        """Everything the screen says about the cursor, worked out once (see Moment)."""
        return moment_at(self.timeline, self.view, self.index, self.queues)

    def loop_state(self) -> LoopState:
        return self.moment().loop_state()


class Queues:
    """The loop's ready queue and timers after any event, for a replay cursor or the live end.

    Built by applying events from the nearest known state at or before the wanted event: the last
    answer when stepping forward (or following a live run), else a checkpoint kept every
    CHECKPOINT_EVERY events. So a step costs what the step changes, and any other move at most
    CHECKPOINT_EVERY events, however many tasks and events the trace holds."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._cache: tuple[int, dict[int, int], dict[int, int]] | None = None
        # event index -> the queues after it: (ready tasks, since, sleeping tasks, deadlines)
        self._checkpoints: dict[int, tuple[array[int], ...]] = {}

    def after(self, target: int) -> tuple[dict[int, int], dict[int, int]]:
        """(ready task -> since, sleeping task -> deadline) after event ``target``."""
        start, ready, timers = -1, dict[int, int](), dict[int, int]()
        last = self._cache
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
        self._cache = (target, ready, timers)
        return ready, timers


def _apply_to_queues(event: ev.AnyEvent, ready: dict[int, int], timers: dict[int, int]) -> None:
    if isinstance(event, (ev.Create, ev.Ready)):
        ready[event.task] = event.t
        timers.pop(event.task, None)
    elif isinstance(event, (ev.Resume, ev.Done)):
        ready.pop(event.task, None)
        timers.pop(event.task, None)
    elif isinstance(event, ev.Suspend):
        deadline = event.waiting_on.deadline
        if deadline is not None:
            timers[event.task] = deadline


def _span_state(lane: model.Lane, t: int) -> str | None:
    span = lane.span_at(t)
    return span.state if span is not None else None


# -- one instant, as every panel shows it ----------------------------------------------------


@dataclass
class Moment:
    """Everything the screen says about one instant, worked out once.

    The header, the banner, the explanation, the loop panel and the lane icons all read this one
    object, so they cannot disagree: who holds the loop, who is starved, what the loop is doing
    and each lane's state are each decided here, once."""

    timeline: Timeline
    view: ViewState  # the instant is its horizon
    t: int
    index: int  # the event at or before t (-1: none yet)
    event: ev.AnyEvent | None
    block: model.Block | None  # the block in progress, as a viewer saw it then
    status: str  # blocked | running | idle | between steps | finished | starting
    doing: str  # the loop panel's sentence; it starts with the status in other words
    holder: str  # the label of the task holding the loop during a block
    starved: list[model.TaskLane]  # ready during the block so far, unable to run
    running: list[model.TaskLane]
    ready: list[str]  # labels, in the order they became ready
    timers: list[str]  # "label at 1.234 s", soonest first
    explanation: str
    _states: dict[int, str | None] = field(default_factory=dict)

    def lane_state(self, lane: model.TaskLane) -> str | None:
        """The lane's state now: ``done`` once finished, ``blocked`` only past the threshold."""
        state = self._states.get(lane.id, "?")
        if state == "?":
            if lane.done_at is not None and lane.done_at <= self.t:
                state = model.DONE
            else:
                state = lane.state_as_of(self.t, self.timeline.block_threshold_ns)
                if self.block is not None and lane.id == self.block.task:
                    state = model.BLOCKED
            self._states[lane.id] = state
        return state

    @property
    def headline(self) -> str:
        """``BLOCKED 1.3 s: time.sleep(2) at blocking.py:25`` during a block, else the status."""
        if self.block is None:
            return self.status
        return block_headline(self.timeline, self.block, self.t)

    @property
    def starved_labels(self) -> list[str]:
        return [lane.label for lane in self.starved]

    def loop_state(self) -> LoopState:
        return LoopState(doing=self.doing, ready=self.ready, timers=self.timers)


def moment_at(
    timeline: Timeline, view: ViewState, index: int, queues: Queues | None = None
) -> Moment:
    """The moment at the view's horizon (the replay cursor, or now when live); ``index`` is the
    last event shown. ``queues`` (kept between calls) makes stepping cost only what changed."""
    t = view.horizon
    events = timeline.events
    event = events[index] if 0 <= index < len(events) else None
    block = timeline.current_block(t, view.live)
    running = [] if block is not None else (
        timeline.running_now() if view.live else timeline.running_at(t)
    )  # fmt: skip
    holder, starved = "", []
    if block is not None:
        holder = timeline.display_name(block.task)
        status = "blocked"
        doing = f"blocked by {holder}" + (f": {block.code}" if block.code else "")
        starved = timeline.starved(block, t)
    elif running:
        status, doing = "running", f"running a step of {running[0].label}"
    elif timeline.ended and t >= timeline.end_t:
        status, doing = "finished", "finished: the program has ended"
    elif view.live:
        status, doing = "idle", "idle: waiting for I/O or a timer"
    elif _span_state(timeline.loop, t) == model.IDLE:
        status, doing = "idle", "idle: waiting in select() for I/O or a timer"
    elif not timeline.loop.starts or t < timeline.loop.starts[0]:
        status, doing = "starting", "starting: no step has run yet"
    else:
        status, doing = "between steps", "between steps (running callbacks)"
    ready_at, timers_at = queues.after(index) if queues is not None else ({}, {})
    # An old trace may lack ready events: a timer already past is a ready task.
    due = [(deadline, task) for task, deadline in timers_at.items() if deadline <= t]
    first_ready = heapq.nsmallest(QUEUE_SHOWN, [*((s, k) for k, s in ready_at.items()), *due])
    pending = heapq.nsmallest(QUEUE_SHOWN, ((d, k) for k, d in timers_at.items() if d > t))
    name = timeline.display_name
    ready = [name(task) for _since, task in first_ready]
    if len(ready_at) + len(due) > len(ready):
        ready.append(f"+{len(ready_at) + len(due) - len(ready):,} more")
    moment = Moment(
        timeline=timeline, view=view, t=t, index=index, event=event, block=block, status=status,
        doing=doing, holder=holder, starved=starved, running=running, ready=ready,
        timers=_timer_words(pending, len(timers_at) - len(due), name),
        explanation="",
    )  # fmt: skip
    moment.explanation = _explain_moment(moment)
    return moment


def _timer_words(pending: list[tuple[int, int]], total: int,
                 name: Callable[[int | None], str]) -> list[str]:  # fmt: skip
    """``fast at 2.004 s``; timers due at the same millisecond share one entry (``wait #1, wait
    #2 at 0.627 s``), and what the list leaves out is counted, not repeated."""
    words: list[str] = []
    by_clock: dict[str, list[str]] = {}
    for deadline, task in pending:
        by_clock.setdefault(clock(deadline), []).append(name(task))
    for when, names in by_clock.items():
        words.append(f"{', '.join(names)} at {when}")
    if total > len(pending):
        words.append(f"+{total - len(pending):,} more")
    return words


def _explain_moment(moment: Moment) -> str:
    event, block = moment.event, moment.block
    if event is None:
        return "Nothing has happened yet."
    timeline = moment.timeline
    block_event = isinstance(event, (ev.BlockBegin, ev.Block)) and block is not None
    if block is not None and (event.t < block.start + timeline.block_threshold_ns
                              or (not isinstance(event, (ev.Ready, ev.Output))
                                  and not block_event)):  # fmt: skip
        # the words of the block itself: the event before it is older than what the screen shows
        return _explain_block_now(moment)
    if block_event:
        return _explain_block_now(moment)
    return explain_event(timeline, event, moment)


def _explain_block_now(moment: Moment) -> str:
    block = moment.block
    assert block is not None  # (only said during a block)
    culprit = culprit_words(block)
    held = duration(moment.t - block.start, 2)
    starved = _starved_words(moment.starved_labels, "are", "is")
    return f"{moment.holder} blocks the loop: {culprit}; it has held it for {held}{starved}"


def _starved_words(labels: list[str], plural: str, singular: str) -> str:
    if not labels:
        return ""
    count = len(labels)
    verb = plural if count != 1 else singular
    shown = ", ".join(labels[:6]) + (f" and {count - 6} more" if count > 6 else "")
    return f"; {count} task{'s' if count != 1 else ''} {verb} starved: {shown}"


def culprit_words(block: model.Block) -> str:
    """What held the loop, in plain words, whatever the recorder could see."""
    if block.gil:
        if block.code:  # (the GIL may have been held by C code in another thread, too)
            return (
                "inside a C call that held the GIL; the last Python line seen was "
                f"{block.code} at {_short(block.where)}"
            )
        if block.stack:  # no line at all: the recorder names whose step it was
            where, _, func = block.stack[0].partition(" in ")
            return (
                f"inside a C call that held the GIL, in {func}() ({_short(where)}); "
                "no Python line could be sampled"
            )
        return "inside a C call that held the GIL; no Python line could be sampled"
    if block.where:
        return f"{block.code} at {_short(block.where)}"
    if block.code:  # a C function the loop called back: named, but it has no line
        return block.code
    if block.end is not None:
        return "no line was sampled (the block ended before the watchdog looked)"
    return "code the watchdog has not sampled yet"


def block_headline(timeline: Timeline, block: model.Block, horizon: int) -> str:
    """``BLOCKED 1.3 s: time.sleep(2) at blocking.py:25``, the words the header shows."""
    text = f"BLOCKED {duration(block.duration(horizon), 2)}"
    if block.gil:
        return f"{text} in {timeline.display_name(block.task)}: a C call holding the GIL"
    if block.where:
        filename, _, line = block.where.rpartition(":")
        return f"{text}: {block.code} at {filename.rsplit('/', 1)[-1]}:{line}"
    return f"{text} in {timeline.display_name(block.task)} (no sample yet)"


def explain_event(timeline: Timeline, event: ev.AnyEvent, moment: Moment | None = None) -> str:
    """An event in plain words. With ``moment`` (the cursor's), what depends on the instant (is
    the loop blocked? who is starved?) is read from it; without, as of the event's own time."""
    task = ev.task_of(event)
    name = timeline.display_name(task) if "task" in event.__struct_fields__ else ""
    t = event.t
    match event:
        case ev.Create():
            parent = "asyncio.run creates" if not event.parent else (
                f"{timeline.display_name(event.parent)} creates"
            )  # fmt: skip
            return f"{parent} {name} ({event.coro}() at {_short(event.where)}); it is ready to run"
        case ev.Resume():
            return _explain_resume(timeline, event, name)
        case ev.Suspend():
            wait = event.waiting_on
            until = f" until {clock(wait.deadline)}" if wait.deadline is not None else ""
            where = f" at {_short(wait.where)}" if wait.where else ""
            return f"{name} awaits{where}: it waits on {wait.label}{until} and gives the loop back"
        case ev.Ready():
            block = moment.block if moment is not None else timeline.current_block(t)
            slept = event.cause == ev.SLEEP_ENDED
            why = "its sleep ended" if slept else _why_ready(timeline, event)
            if block is not None:
                return f"{name} is ready ({why}), but the loop is blocked: {name} is starved"
            return f"{name} is ready ({why}); it runs when the loop gets to it"
        case ev.Done():
            outcome = {"returned": "returns", "raised": "raises", "cancelled": "is cancelled"}
            detail = f" {event.detail}" if event.detail else ""
            said = outcome.get(event.outcome, event.outcome)
            return f"{name} {said}{detail}: it is done" + _group_words(timeline, event)
        case ev.BlockBegin() | ev.Block():
            return _explain_block(timeline, event, name)
        case ev.ThreadStart() | ev.ThreadEnd():
            verb = "starts" if isinstance(event, ev.ThreadStart) else "finishes"
            return f"worker thread {_thread_label(timeline, event.thread)} {verb} {event.func} " \
                   f"for {name}"  # fmt: skip
        case ev.ThreadJob():
            whom = f" for {name}" if event.task is not None else ""
            return f"thread {_thread_label(timeline, event.thread)} hands the result of " \
                   f"{event.func or 'its work'} back to the loop{whom}"  # fmt: skip
        case ev.Entry():
            return f"{name} runs the program's own {event.func}()"
        case ev.Unseen():
            return f"the recorder could not see {event.count or 'some'} task(s): " \
                   f"{event.detail}".rstrip(": ")  # fmt: skip
        case ev.Idle():
            return f"the loop waited {duration(t - event.start)} in select(): nothing was ready"
        case ev.Output():
            text = event.text.rstrip("\n").splitlines()
            return f"the program writes to {event.stream}: {text[-1] if text else ''}"
        case ev.Loop():
            return f"the event loop starts ({event.impl})"
        case ev.Source():
            return f"the recording notes {event.file} and its digest, to check it later"
        case ev.Rename():
            return f"task {event.task} is renamed {event.name}"
        case ev.Unretrieved():
            return f"{name} raised {event.detail} and nobody ever retrieved the exception"
        case ev.End():
            error = f" ({event.error})" if event.error else ""
            return f"the program ends with exit status {event.exit_code}{error}"
    return event.ev


def _thread_label(timeline: Timeline, thread: str) -> str:
    lane = timeline.threads.get(thread)
    return lane.label if lane is not None else thread


def _why_ready(timeline: Timeline, event: ev.Ready) -> str:
    """Why a task awaiting others woke: a failed child of its TaskGroup, or all done."""
    lane = timeline.tasks.get(event.task)
    group = timeline.group_wait(event.task, event.t) if lane is not None else None
    if group is not None and group.in_task_group:
        failed = _failed_children(timeline, group, event.t)
        if failed:
            t = event.t
            children = (timeline.tasks.get(c) for c in group.children or ())
            if all(c is None or (c.done_at is not None and c.done_at <= t) for c in children):
                return "the last task of its TaskGroup is done"
            return f"{failed[0].label} in its TaskGroup raised: the group cancels the others"
    return "what it awaited is done"


def _failed_children(timeline: Timeline, wait: ev.Wait, t: int) -> list[model.TaskLane]:
    """Children of the group that had raised by ``t``, over every wait on that same group (the
    later waits list only the children left)."""
    ids = dict.fromkeys(wait.children or ())
    obj = wait.obj
    if obj:
        for waits in timeline._group_waits.values():
            for _start, other in waits:
                if other.obj == obj:
                    ids.update(dict.fromkeys(other.children or ()))
    children = (timeline.tasks.get(c) for c in ids)
    return [c for c in children if c is not None and c.outcome == "raised"
            and c.done_at is not None and c.done_at <= t]  # fmt: skip


def _group_words(timeline: Timeline, event: ev.Done) -> str:
    """After a child of a TaskGroup raised, what its siblings' ends mean."""
    lane = timeline.tasks.get(event.task)
    if lane is None or event.outcome != "cancelled" or lane.parent is None:
        return ""
    group = timeline.group_wait(lane.parent, event.t)
    if group is None or not group.in_task_group:
        return ""
    failed = _failed_children(timeline, group, event.t)
    return f" (its TaskGroup cancelled it because {failed[0].label} raised)" if failed else ""


def _explain_resume(timeline: Timeline, event: ev.Resume, name: str) -> str:
    lane = timeline.tasks.get(event.task)
    if lane is None:
        return f"{name} resumes"
    t = event.t
    i = bisect_left(lane.starts, t) - 1
    before = lane.spans[i] if i >= 0 else None
    cancelled = lane.outcome == "cancelled" and lane.done_at is not None and (
        bisect_right(lane.starts, t) == len(lane.starts)
    )  # its last step: the one that ends it  # fmt: skip
    if cancelled:
        return f"{name} resumes only to be cancelled: CancelledError is raised at its await"
    if before is not None and before.state == model.READY and i >= 1:
        waited = lane.spans[i - 1]
        wait = _wait_begun(timeline, lane.id, waited.start)
        if waited.state == model.WAITING and wait is not None and wait.kind == "sleep":
            late = t - before.start
            lateness = f", {duration(late, 2)} late" if late >= 1_000_000 else ""
            length = f"{wait.delay_ns / 1e9:g}s " if wait.delay_ns is not None else ""
            return f"{name} resumes: its {length}sleep ended at {clock(before.start)}{lateness}"
        if waited.state == model.WAITING:
            return _explain_wait_over(timeline, lane, waited, t, name)
    if before is not None and before.label == "scheduled":
        return f"{name} runs for the first time"
    return f"{name} resumes"


def _wait_begun(timeline: Timeline, task: int, t: int) -> ev.Wait | None:
    """The wait of the task's suspend at ``t`` (the start of one of its waiting spans)."""
    first = bisect_left(timeline.times, t)
    last = bisect_right(timeline.times, t)
    for event in timeline.events.iter_range(first, last):
        if isinstance(event, ev.Suspend) and event.task == task:
            return event.waiting_on
    return None


def _explain_wait_over(timeline: Timeline, lane: model.TaskLane, waited: model.Span, t: int,
                       name: str) -> str:  # fmt: skip
    group = timeline.group_wait(lane.id, waited.start)
    if group is not None and group.in_task_group:
        failed = _failed_children(timeline, group, t)
        children = [timeline.tasks.get(c) for c in group.children or ()]
        left = [c for c in children if c is not None and (c.done_at is None or c.done_at > t)]
        if failed and left:
            return (f"{name} resumes: {failed[0].label} in its TaskGroup raised, so the group "
                    f"cancels the {len(left)} still running and waits for them")  # fmt: skip
        if failed and _waits_again(timeline, lane, t, group):
            return (f"{name} resumes: {failed[0].label} in its TaskGroup raised and the others "
                    "are cancelled; the group waits once more for their ends to be counted")
        if failed:
            errors = "; ".join(c.detail or "an exception" for c in failed)
            return (f"{name} resumes: every task of its TaskGroup is done and "
                    f"{', '.join(c.label for c in failed)} raised, so the TaskGroup raises "
                    f"ExceptionGroup([{errors}]) in {name}")  # fmt: skip
    return f"{name} resumes: {waited.label} is done"


def _waits_again(timeline: Timeline, lane: model.TaskLane, t: int, group: ev.Wait) -> bool:
    """Does the step that begins at ``t`` end by waiting on the same group again?"""
    j = bisect_right(lane.starts, t)  # the span after this step
    if j >= len(lane.starts) or lane.spans[j].state != model.WAITING:
        return False
    again = timeline.group_wait(lane.id, lane.starts[j])
    return again is not None and again is not group and again.obj == group.obj


def _explain_block(timeline: Timeline, event: ev.BlockBegin | ev.Block, name: str) -> str:
    """A block's event as of its own time (the event log): the starved as of then."""
    block = next((b for b in timeline.blocks if b.start == event.start), None)
    end = event.end if isinstance(event, ev.Block) else None
    if block is None:
        block = model.Block(event.task, event.start, end, event.where, event.code, [], event.gil)
    culprit = culprit_words(block)
    if end is None:
        starved = [lane.label for lane in timeline.starved(block, event.t)]
        return f"{name} blocks the loop: {culprit}" + _starved_words(starved, "are", "is")
    starved = [lane.label for lane in timeline.starved(block, end)]
    length = duration(end - event.start, 2)
    return f"the loop is free again after {length}: {name} held it with {culprit}" + (
        _starved_words(starved, "were", "was")
    )  # fmt: skip


@dataclass(frozen=True)
class KeyMoment:
    """A moment a lesson stops at, and why it matters."""

    index: int  # the event the cursor goes to
    t: int
    kind: str  # block | starvation | exception | end
    why: str


def key_moments(timeline: Timeline) -> list[KeyMoment]:
    """The moments worth stopping at in a lesson, in time order: each block (where a viewer
    first sees it), the first task starved by a block, each exception that ends a task, and the
    end of the program. One pass over the events."""
    found: list[KeyMoment] = []
    seen_blocks: set[int] = set()
    starved_yet = False
    threshold = timeline.block_threshold_ns
    blocks = {block.start: block for block in timeline.blocks}
    for i, event in enumerate(timeline.events):
        if isinstance(event, (ev.BlockBegin, ev.Block)) and event.start not in seen_blocks:
            seen_blocks.add(event.start)
            holder = timeline.display_name(event.task)
            at, t = i, event.t
            if isinstance(event, ev.Block):  # no word from the watchdog while it lasted: where
                t = min(event.start + threshold, event.end)  # it began to be one
                at = bisect_right(timeline.times, t) - 1
            why = (f"Why it matters: until {holder} awaits, the loop cannot switch tasks: "
                   "everything else freezes.")
            block = blocks.get(event.start)
            if not starved_yet and block is not None and timeline.starved(block, t):
                starved_yet = True  # the first starved tasks are already waiting: say it here
                why += " Ready tasks starve."
            found.append(KeyMoment(at, t, "block", why))
        elif isinstance(event, ev.Ready) and not starved_yet:
            block = next((b for b in blocks.values() if b.start + threshold <= event.t
                          and (b.end is None or event.t < b.end)), None)  # fmt: skip
            if block is not None and event.task != block.task:
                starved_yet = True
                name = timeline.display_name(event.task)
                found.append(KeyMoment(i, event.t, "starvation",
                                       f"Why it matters: {name} could run, but the loop is "
                                       "held: its wait grows for nothing."))
        elif isinstance(event, ev.Done) and event.outcome == "raised":
            name = timeline.display_name(event.task)
            found.append(KeyMoment(i, event.t, "exception",
                                   f"Why it matters: the exception leaves {name}; whoever "
                                   "awaits it (await, gather, TaskGroup) gets it next."))
        elif isinstance(event, ev.End):
            found.append(KeyMoment(i, event.t, "end",
                                   "Why it matters: the whole run is on screen: compare how "
                                   "long it took with how long tasks waited."))
    return sorted(found, key=lambda k: (k.t, k.index))


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
