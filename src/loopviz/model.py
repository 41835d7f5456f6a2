"""The timeline model: what every task, the loop and each worker thread was doing, and when.

Pure Python with no UI import, so the same model serves the live app, replays, exports and tests.
Events go in (in time order); lanes of state spans come out, with an index by time so that "what
was the state of everything at time t" costs a binary search per lane.
"""

from __future__ import annotations

import gc
import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, overload

from loopviz import events as ev
from loopviz.eventstore import EventStore

# Task states (docs/recording.md and the README say what each means on screen).
RUNNING = "running"
READY = "ready"
WAITING = "waiting"
BLOCKED = "blocked"
DONE = "done"
# Loop-only states.
BUSY = "busy"
IDLE = "idle"


# ``anyio._core._sockets.connect_tcp.<locals>.try_connect``, ``__main__.producer``
_DOTTED_NAME = re.compile(r"[A-Za-z_][\w]*(\.(<locals>|[A-Za-z_]\w*))+")

_INTERNAL_COROUTINES = frozenset(
    {"BaseEventLoop.shutdown_asyncgens", "BaseEventLoop.shutdown_default_executor"}
)


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic GC while making many long-lived objects that form no cycles (events read
    from a trace, spans): it would otherwise walk all of them again and again."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(slots=True)
class Span:
    """One stretch of a lane in one state. ``end`` is None while it is still going on."""

    start: int
    end: int | None
    state: str
    label: str = ""
    deadline: int | None = None  # a wait's own end (a sleep's deadline), if known in advance


_STATES = (RUNNING, READY, WAITING, BLOCKED, DONE, BUSY, IDLE)
_STATE_CODES = {state: code for code, state in enumerate(_STATES)}
OPEN = -(2**63)  # the end (or deadline) a span does not have yet, in the int64 columns
# Codes in the lanes' ``states`` column: the ingest's handlers open spans by code.
_RUNNING, _READY, _WAITING = _STATE_CODES[RUNNING], _STATE_CODES[READY], _STATE_CODES[WAITING]
_BLOCKED, _BUSY, _IDLE = _STATE_CODES[BLOCKED], _STATE_CODES[BUSY], _STATE_CODES[IDLE]


def _times() -> array[int]:
    return array("q")


@dataclass(slots=True)
class Lane:
    """A row of the timeline: spans in start order, indexed for lookups by time.

    Spans are stored in columns (int64 arrays, a byte per state, a shared label string) at about
    33 bytes a span, and handed out as Span objects made when asked for: a million-event run has
    over a million spans, which as objects would take five times that.
    """

    starts: array[int] = field(default_factory=_times)
    ends: array[int] = field(default_factory=_times)  # OPEN while still going on
    states: bytearray = field(default_factory=bytearray)
    labels: list[str] = field(default_factory=list)
    deadlines: array[int] = field(default_factory=_times)  # OPEN: none known

    def open(self, start: int, code: int, label: str = "", deadline: int = OPEN,
             end: int = OPEN) -> None:  # fmt: skip
        """A span from ``start`` in the state of ``code`` (see _STATES), OPEN while going on."""
        self.starts.append(start)
        self.ends.append(end)
        self.states.append(code)
        self.labels.append(label)
        self.deadlines.append(deadline)

    def span(self, i: int) -> Span:
        end, deadline = self.ends[i], self.deadlines[i]
        return Span(self.starts[i], None if end == OPEN else end, _STATES[self.states[i]],
                    self.labels[i], None if deadline == OPEN else deadline)  # fmt: skip

    @property
    def spans(self) -> SpanList:
        return SpanList(self)

    @property
    def current(self) -> Span | None:
        """The last span, if it is still going on."""
        return self.span(-1) if self.ends and self.ends[-1] == OPEN else None

    def close(self, t: int) -> int | None:
        """End the span going on at ``t``; return its index (None if none was going on)."""
        ends = self.ends
        if ends and ends[-1] == OPEN:
            ends[-1] = t
            return len(ends) - 1
        return None

    def span_at(self, t: int) -> Span | None:
        i = bisect_right(self.starts, t) - 1
        if i < 0:
            return None
        end = self.ends[i]
        if end == OPEN or t < end or self.starts[i] == end == t:
            return self.span(i)
        return None

    def spans_between(
        self, t0: int, t1: int, horizon: int, block_threshold_ns: int | None = None
    ) -> Iterator[Span]:
        """Spans overlapping [t0, t1) as they stood at ``horizon`` (now when live, the cursor in
        a replay). Nothing after the horizon is shown, and a span still going on then is open:
        a wait whose deadline had passed is split there (ready from then on), and a step that
        had run past the block threshold is blocked, one that had not is still running."""
        starts, ends = self.starts, self.ends
        for k in range(max(bisect_right(starts, t0) - 1, 0), len(starts)):
            start = starts[k]
            if start >= t1 or start > horizon:
                break
            end = ends[k]
            if end != OPEN and end <= horizon:
                if end >= t0:
                    yield self.span(k)
                continue
            if horizon < t0:
                continue
            span = self.span(k)
            state = span.state
            if state in (RUNNING, BUSY, BLOCKED) and block_threshold_ns is not None:
                long = horizon - start >= block_threshold_ns
                state = BLOCKED if long else (BUSY if state == BUSY else RUNNING)
            if state == WAITING and span.deadline is not None and span.deadline < horizon:
                yield Span(start, span.deadline, state, span.label)
                yield Span(span.deadline, None, READY, "starved")
            else:
                yield Span(start, None, state, span.label, span.deadline)


class SpanList(Sequence[Span]):
    """A lane's spans as a read-only sequence of Span objects, made as they are read."""

    __slots__ = ("_lane",)

    def __init__(self, lane: Lane) -> None:
        self._lane = lane

    def __len__(self) -> int:
        return len(self._lane.starts)

    @overload
    def __getitem__(self, index: int) -> Span: ...

    @overload
    def __getitem__(self, index: slice) -> list[Span]: ...

    def __getitem__(self, index: int | slice) -> Span | list[Span]:
        if isinstance(index, slice):
            return [self._lane.span(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("span index out of range")
        return self._lane.span(index)


@dataclass(slots=True)
class TaskLane(Lane):
    id: int = 0
    name: str = ""
    coro: str = ""
    parent: int | None = None
    where: str = ""
    created: int = 0
    done_at: int | None = None
    outcome: str = ""  # returned | raised | cancelled
    detail: str = ""
    steps: int = 0
    busy_ns: int = 0
    longest_step_ns: int = 0
    waiting_on: ev.Wait | None = None
    unretrieved: bool = False  # raised, and nobody ever looked at the exception
    asyncio_internal: bool = False
    args: str = ""  # the coroutine's simple arguments ("'a.com', 2"), if the recorder saw them
    entry: str = ""  # the user's coroutine inside a task a library made ("read_item")
    ordinal: int = 1  # among lanes of the same base label, in creation order
    twins: dict[str, int] | None = None  # base label -> lanes that have it (the timeline's table)

    @property
    def base_label(self) -> str:
        """The name with what tells it apart from its kind: ``download('a.com', 2)``,
        ``run_asgi → read_item``; the task's own name where it was given one."""
        if self.name.startswith("Task-") and self.name[5:].isdigit():
            if self.entry:  # a library's task: its method, then the program's function
                base = self.coro.rsplit(".", 1)[-1]
                if self.entry != base:
                    base = f"{base} → {self.entry}"
            else:  # ``LifespanOn.main`` stays apart from the program's own ``main``
                base = self.coro.rsplit(".<locals>.", 1)[-1]
            shown = self.args.replace("...", "").strip(", ")
            return f"{base}({self.args})" if shown else base
        if _DOTTED_NAME.fullmatch(self.name):  # anyio names tasks by their function's path
            return self.name.rsplit(".", 1)[-1]
        return self.name

    @property
    def label(self) -> str:
        """The label every panel uses for this lane: the base label, numbered (``handle #3``)
        where other lanes share it, so that no two lanes read the same."""
        base = self.base_label
        if self.twins is not None and self.twins.get(base, 1) > 1:
            return f"{base} #{self.ordinal}"
        return base

    @property
    def internal(self) -> bool:
        """asyncio's own housekeeping tasks (accepting connections, ``asyncio.run`` shutting
        down), not the program's: recorded, but not drawn as lanes."""
        return self.asyncio_internal or self.coro in _INTERNAL_COROUTINES

    def state_at(self, t: int) -> str | None:
        if t < self.created:
            return None
        if self.done_at is not None and t >= self.done_at:
            return DONE
        span = self.span_at(t)
        if span is None:
            return None
        if span.state == WAITING and span.deadline is not None and t >= span.deadline:
            return READY
        return span.state

    def time_in(self, states: tuple[str, ...], horizon: int) -> int:
        """Nanoseconds this lane spent in ``states`` up to ``horizon``."""
        total = 0
        for span in self.spans_between(0, horizon + 1, horizon):
            if span.state in states:
                total += (span.end if span.end is not None else horizon) - span.start
        return total

    def state_as_of(self, horizon: int, block_threshold_ns: int) -> str | None:
        """The state at ``horizon`` as a viewer then saw it: a step is blocked only once it has
        run past the threshold (the final state of a long step is known only at its end)."""
        state = self.state_at(horizon)
        if state in (RUNNING, BLOCKED):
            span = self.span_at(horizon)
            if span is not None:
                long = horizon - span.start >= block_threshold_ns
                return BLOCKED if long else RUNNING
        return state


@dataclass(slots=True)
class ThreadLane(Lane):
    name: str = ""
    label: str = ""  # for people: "worker 1", "pool 2 worker 3", or the thread's own name


def thread_label(name: str) -> str:
    """``asyncio_0`` -> ``worker 1``; ``ThreadPoolExecutor-1_2`` -> ``pool 2 worker 3``: the
    default executor's threads and pools' threads counted from 1, other threads as named."""
    prefix, _, number = name.rpartition("_")
    if prefix == "asyncio" and number.isdigit():
        return f"worker {int(number) + 1}"
    pool, _, pool_number = prefix.rpartition("-")
    if pool == "ThreadPoolExecutor" and pool_number.isdigit() and number.isdigit():
        return f"pool {int(pool_number) + 1} worker {int(number) + 1}"
    return name


@dataclass(slots=True)
class Block:
    """The loop held by one step or callback for longer than the threshold."""

    task: int | None
    start: int
    end: int | None
    where: str
    code: str
    stack: list[str]
    gil: bool = False  # C code held the GIL: no sample in time; ``where`` is the last line seen

    def duration(self, now: int) -> int:
        return (self.end if self.end is not None else now) - self.start


@dataclass(slots=True)
class Output:
    t: int
    stream: str
    text: str


class Timeline:
    def __init__(self, block_threshold_ns: int = 100_000_000) -> None:
        self.block_threshold_ns = block_threshold_ns
        self.tasks: dict[int, TaskLane] = {}
        self.threads: dict[str, ThreadLane] = {}
        self.loop = Lane()
        self.blocks: list[Block] = []
        self.outputs: list[Output] = []
        self.events = EventStore()
        self.loop_impl: str | None = None
        self.loop_threads: list[str] = []  # the thread of each event loop, in order
        self.unrecorded: str = ""
        self.unseen: list[ev.Unseen] = []  # the recorder's notices of tasks it could not see
        self.twins: dict[str, int] = {}  # base label -> lanes that have it (see TaskLane.label)
        self.end_t: int = 0
        self.exit_code: int | None = None
        self.error: str | None = None
        self.ended = False
        self.times = array("q")  # t of each event, for bisecting
        self.output_times: list[int] = []
        self._running: dict[int, int] = {}  # task id -> start of its running step
        self._nested_ns: dict[int, int] = {}  # task id -> time its step spent in nested steps
        self._loop_blocked = False  # a step of the loop lane's current span was long
        self._loop_tasks = array("q")  # per loop-lane span: the task whose step it is, or -1
        self._nested_steps = False  # a step ran inside another (eager tasks): see running_at
        self.detail_until: int | None = None  # set by end_detail(): lanes stop there
        self._group_waits: dict[int, list[tuple[int, ev.Wait]]] = {}  # task -> gather/group waits
        self._strings: dict[str, str] = {}  # one object per distinct span label (see _string)
        self.sources: dict[str, ev.Source] = {}  # ``source`` events by file (path, sha256)
        # event kind -> its _on_<kind> function (unbound: a bound method would make a reference
        # cycle, and a finished timeline wait for the cyclic GC); others only go into ``events``
        self._handlers: dict[type[ev.Event], Callable[[Timeline, Any], None]] = {
            ev.KINDS[name[4:]]: getattr(Timeline, name)
            for name in dir(Timeline) if name.startswith("_on_")
        }  # fmt: skip

    # -- ingest ---------------------------------------------------------------------------

    def add_events(self, events: Iterable[ev.AnyEvent]) -> None:
        # Runs for every event of a live run and of a trace being opened: keep it lean. Left on,
        # the cyclic GC would take more time than the ingest (see paused_gc).
        with paused_gc():
            self._ingest(events)

    def _ingest(self, events: Iterable[ev.AnyEvent]) -> None:
        handlers = self._handlers
        taken: list[ev.AnyEvent] = []  # into the store in one go (none of the handlers reads it)
        take, append_time = taken.append, self.times.append
        end_t = self.end_t
        try:
            for event in events:
                t = event.t
                take(event)
                append_time(t)
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(self, event)
                if t > end_t:
                    end_t = t
        finally:  # the events may come from a file that turns out damaged: keep those taken
            self.events.extend(taken)
            self.end_t = end_t

    def _string(self, text: str) -> str:
        """The one copy of ``text`` the lanes share: a run has few distinct labels, and each
        decoded event brings its own copy of its label."""
        return self._strings.setdefault(text, text)

    def _on_loop(self, e: ev.Loop) -> None:
        self.loop_impl = self.loop_impl or e.impl
        self.unrecorded = e.unrecorded
        self.loop_threads.append(e.thread)

    def _on_create(self, e: ev.Create) -> None:
        lane = TaskLane(
            id=e.task, name=e.name, coro=e.coro, parent=e.parent, where=e.where, created=e.t,
            asyncio_internal=e.internal, args=e.args, twins=self.twins,
        )  # fmt: skip
        lane.open(e.t, _READY, "scheduled")
        self.tasks[lane.id] = lane
        self._count_label(lane)

    def _count_label(self, lane: TaskLane) -> None:
        if not lane.internal:
            base = lane.base_label
            lane.ordinal = self.twins[base] = self.twins.get(base, 0) + 1

    def _relabel(self, lane: TaskLane, change: Callable[[], None]) -> None:
        """Apply ``change`` to a lane's label fields, counting it under its new base label."""
        if not lane.internal and self.twins.get(lane.base_label, 0) > 0:
            self.twins[lane.base_label] -= 1  # (its old number is kept by no one: no reuse)
        change()
        self._count_label(lane)

    def _on_rename(self, e: ev.Rename) -> None:
        lane = self.tasks.get(e.task)
        if lane is not None:
            self._relabel(lane, lambda: setattr(lane, "name", e.name))

    def _on_entry(self, e: ev.Entry) -> None:
        lane = self.tasks.get(e.task)
        if lane is not None and e.func:
            self._relabel(lane, lambda: setattr(lane, "entry", e.func.rsplit(".", 1)[-1]))

    def _on_unseen(self, e: ev.Unseen) -> None:
        self.unseen.append(e)

    def _on_ready(self, e: ev.Ready) -> None:
        lane = self.tasks.get(e.task)
        if lane is not None:
            ends = lane.ends
            if ends and ends[-1] == OPEN and lane.states[-1] == _WAITING:
                ends[-1] = t = e.t
                lane.open(t, _READY, self._strings.setdefault(e.cause, e.cause))

    def _on_unretrieved(self, e: ev.Unretrieved) -> None:
        lane = self.tasks.get(e.task)
        if lane is not None:
            lane.unretrieved = True

    def _on_resume(self, e: ev.Resume) -> None:
        lane = self.tasks.get(e.task)
        if lane is None:
            return
        t = e.t
        ends = lane.ends
        if ends and ends[-1] == OPEN:  # the wait it resumes from ends
            ends[-1] = t
            deadline = lane.deadlines[-1]
            if deadline != OPEN and deadline < t:  # its sleep ended before the loop got to it
                ends[-1] = ready = max(deadline, lane.starts[-1])
                lane.open(ready, _READY, "ready", end=t)
        lane.open(t, _RUNNING)
        lane.waiting_on = None
        blocks = self.blocks
        if blocks and blocks[-1].end is None:
            self._close_blocks(None, t)  # a callback block ends when a step begins
        running = self._running
        running[lane.id] = t
        if len(running) == 1:
            loop = self.loop
            loop_ends = loop.ends
            if loop_ends and loop_ends[-1] == OPEN:
                loop_ends[-1] = t
            loop.open(t, _BUSY)
            self._loop_tasks.append(lane.id)
        else:  # an eager task's first step, run inside another task's step
            self._nested_steps = True

    def _end_step(self, lane: TaskLane, t: int) -> None:
        ends = lane.ends
        running = self._running
        start = running.pop(lane.id, t)
        nested = self._nested_ns
        duration = t - start - (nested.pop(lane.id, 0) if nested else 0)
        for outer in running:  # an eager step ran inside these: not their own holding time
            nested[outer] = nested.get(outer, 0) + duration
        lane.steps += 1
        lane.busy_ns += duration
        if duration > lane.longest_step_ns:
            lane.longest_step_ns = duration
        long = duration >= self.block_threshold_ns
        if ends and ends[-1] == OPEN:
            ends[-1] = t
            if long:
                lane.states[-1] = _BLOCKED
        blocks = self.blocks
        if blocks and blocks[-1].end is None:
            self._close_blocks(lane.id, t)
        loop_blocked = self._loop_blocked or long  # by this step, or one nested in it
        if running:
            self._loop_blocked = loop_blocked
            return
        self._loop_blocked = False
        loop_ends = self.loop.ends
        if loop_ends and loop_ends[-1] == OPEN:
            loop_ends[-1] = t
            if loop_blocked:
                self.loop.states[-1] = _BLOCKED

    def _close_blocks(self, task_id: int | None, t: int) -> None:
        """A block cannot outlive its step (or, for a callback, the next step): close one the
        watchdog opened if its end never came (a sample taken just as the step ended). Called
        only while the last block is open."""
        for block in reversed(self.blocks):
            if block.end is not None:
                break
            if block.task == task_id or block.task is None:
                block.end = max(t, block.start)

    def _on_suspend(self, e: ev.Suspend) -> None:
        lane = self.tasks.get(e.task)
        if lane is None:
            return
        t = e.t
        self._end_step(lane, t)
        wait = lane.waiting_on = e.waiting_on
        deadline = wait.deadline
        label = self._strings.setdefault(wait.label, wait.label)
        lane.open(t, _WAITING, label, OPEN if deadline is None else deadline)
        if wait.kind == "gather":  # few: kept whole, to explain how they end
            self._group_waits.setdefault(lane.id, []).append((t, wait))

    def _on_done(self, e: ev.Done) -> None:
        lane = self.tasks.get(e.task)
        if lane is None:
            return
        t = e.t
        self._end_step(lane, t)
        lane.done_at = t
        lane.outcome = e.outcome
        lane.detail = e.detail
        lane.waiting_on = None

    def end_detail(self) -> None:
        """From now on only blocks and the end come in (a long run past the live view's cap):
        every lane stops here, and blocks are taken as they come."""
        self.detail_until = t = self.end_t
        for lane in (self.loop, *self.tasks.values(), *self.threads.values()):
            lane.close(t)
        self._running.clear()

    def _on_block_begin(self, e: ev.BlockBegin) -> None:
        task = e.task
        followed = self.detail_until is None  # past end_detail(), take the watchdog's word
        if followed and task is not None and self._running.get(task) != e.start:
            return  # that step is over already: a late sample, its ``block`` event (if any) rules
        self.blocks.append(Block(task, e.start, None, e.where, e.code, list(e.stack), e.gil))

    def _on_block(self, e: ev.Block) -> None:
        for block in reversed(self.blocks):
            if block.start == e.start and block.task == e.task:
                block.end = e.end
                block.where = block.where or e.where
                block.code = block.code or e.code
                block.stack = block.stack or list(e.stack)
                block.gil = block.gil or e.gil
                return
        self.blocks.append(Block(e.task, e.start, e.end, e.where, e.code, list(e.stack), e.gil))

    def _on_idle(self, e: ev.Idle) -> None:
        if self.loop.current is None:
            self.loop.open(e.start, _IDLE, end=e.t)
            self._loop_tasks.append(-1)

    def _on_thread_start(self, e: ev.ThreadStart) -> None:
        self._thread_lane(e.thread).open(e.t, _RUNNING, self._job_label(e.func, e.task))

    def _thread_lane(self, name: str) -> ThreadLane:
        lane = self.threads.get(name)
        if lane is None:
            lane = self.threads[name] = ThreadLane(name=name, label=thread_label(name))
        return lane

    def _job_label(self, func: str, task: int | None) -> str:
        """``crunch() ← main``: what a thread runs, and for which task."""
        label = func or "?"
        lane = self.tasks.get(task) if task is not None else None
        if lane is not None:
            label = f"{label} ← {lane.label}"
        return self._string(label)

    def _on_thread_job(self, e: ev.ThreadJob) -> None:
        """A thread not started by run_in_executor handed a result to the loop for a task: drawn
        on that thread's lane like a worker's job (from ``start`` when known, else a moment)."""
        lane = self._thread_lane(e.thread)
        t, start = e.t, e.start
        start = t if start is None else min(start, t)
        if lane.starts:  # spans stay in start order: a job cannot begin before the last began
            last_end = lane.ends[-1]
            start = max(start, lane.starts[-1] if last_end == OPEN else min(last_end, t))
            lane.close(start)
        lane.open(start, _RUNNING, self._job_label(self._named_job(e), e.task), end=t)

    def _named_job(self, e: ev.ThreadJob) -> str:
        """A hand-back names what the thread ran by the wait of the task it ran for (``thread
        crunch()``, ``sqlite execute``), where the recorder saw only the callback
        (``set_result()``)."""
        task = self.tasks.get(e.task) if e.task is not None else None
        wait = task.waiting_on if task is not None else None
        if wait is not None and wait.kind == "thread":
            return wait.label
        return e.func

    def _on_thread_end(self, e: ev.ThreadEnd) -> None:
        lane = self.threads.get(e.thread)
        if lane is not None:
            lane.close(e.t)

    def _on_source(self, e: ev.Source) -> None:
        self.sources.setdefault(e.file, e)  # the first digest: the file as it first ran

    def _on_output(self, e: ev.Output) -> None:
        self.outputs.append(Output(e.t, e.stream, e.text))
        self.output_times.append(e.t)

    def _on_end(self, e: ev.End) -> None:
        self.ended = True
        self.exit_code = e.exit_code
        self.error = e.error
        t = e.t
        for block in self.blocks:
            if block.end is None:
                block.end = t

    # -- questions ------------------------------------------------------------------------
    # Every question is asked "as of the horizon" ``t``: now when live, the cursor in a replay
    # (viewstate.ViewState picks it). ``live``: the run is followed as it records, so a step
    # running at ``t`` may be running still, unseen by the watchdog.

    def visible_tasks(self, horizon: int) -> list[TaskLane]:
        return [
            lane for lane in self.tasks.values() if not lane.internal and lane.created <= horizon
        ]

    def current_block(self, horizon: int, live: bool = False) -> Block | None:
        """The block in progress at ``horizon``. A step becomes a block once it has run past the
        threshold, as a viewer saw it live: before that the lanes show it running, and so does
        everything else. Live, a step that has run past the threshold without a word from the
        watchdog (C code holding the GIL) counts as one too."""
        threshold = self.block_threshold_ns
        for block in reversed(self.blocks):
            if block.start > horizon:
                continue
            if horizon - block.start < threshold and (block.end is None or block.end > horizon):
                continue  # not long enough yet to be a block
            if block.end is None and not live:
                return block
            if block.end is None or block.end > horizon:
                return Block(block.task, block.start, None, block.where, block.code, block.stack,
                             block.gil)  # fmt: skip
            break
        if live:
            for task_id, start in self._running.items():
                if horizon - start >= threshold:
                    return Block(task_id, start, None, "", "", [])
        return None

    def running_at(self, t: int) -> list[TaskLane]:
        """The tasks with a step running at ``t``: the one whose step the loop lane shows, or,
        in a run with eager tasks (steps inside steps), every task in a running state."""
        if self._nested_steps:
            return [lane for lane in self.tasks.values() if lane.state_at(t) in (RUNNING, BLOCKED)]
        loop = self.loop
        i = bisect_right(loop.starts, t) - 1
        if i < 0 or (loop.ends[i] != OPEN and loop.ends[i] <= t):
            return []
        lane = self.tasks.get(self._loop_tasks[i])
        return [lane] if lane is not None and lane.state_at(t) in (RUNNING, BLOCKED) else []

    def loop_status(self, horizon: int, live: bool = False) -> str:
        if self.ended and horizon >= self.end_t:
            return "finished"
        if self.current_block(horizon, live) is not None:
            return "blocked"
        if live:
            return "running" if self._running else "idle"
        return "running" if self.running_at(horizon) else "idle"

    def running_now(self) -> list[TaskLane]:
        """Live: the tasks whose step has begun and not yet ended (the newest events say so)."""
        return [lane for lane in (self.tasks.get(i) for i in self._running) if lane]

    def blocks_until(self, horizon: int, live: bool = False) -> list[Block]:
        """Every block begun by ``horizon``; one still going on then is open (end None)."""
        blocks = []
        for block in self.blocks:
            if block.start > horizon:
                break
            if block.end is None or block.end > horizon:
                if horizon - block.start < self.block_threshold_ns:
                    continue  # not a block yet as of the horizon (see current_block)
                block = Block(block.task, block.start, None, block.where, block.code, block.stack,
                              block.gil)  # fmt: skip
            blocks.append(block)
        current = self.current_block(horizon, live)
        if current is not None and not any(b.start == current.start for b in blocks):
            blocks.append(current)
        return blocks

    def starved(self, block: Block, horizon: int) -> list[TaskLane]:
        """Tasks that were ready during the block (up to the horizon) but could not run."""
        end = min(block.end if block.end is not None else horizon, horizon)
        starved = []
        for lane in self.tasks.values():
            if lane.id == block.task or lane.internal:
                continue
            for span in lane.spans_between(block.start, end + 1, horizon):  # (end included)
                # ready at any moment of the block, whether it became ready before or during it
                ready_until = span.end if span.end is not None else horizon
                if span.state == READY and ready_until > block.start and span.start <= end:
                    starved.append(lane)
                    break
        return starved

    def outputs_until(self, horizon: int) -> list[Output]:
        return self.outputs[: bisect_right(self.output_times, horizon)]

    def states_at(self, t: int) -> dict[int, str | None]:
        return {task_id: lane.state_at(t) for task_id, lane in self.tasks.items()}

    def group_wait(self, task_id: int, t: int) -> ev.Wait | None:
        """The gather or TaskGroup wait the task began last at or before ``t``, if any."""
        for start, wait in reversed(self._group_waits.get(task_id, ())):
            if start <= t:
                return wait
        return None

    def display_name(self, task_id: int | None) -> str:
        if task_id is None:
            return "a callback"
        lane = self.tasks.get(task_id)
        return lane.label if lane else f"task {task_id}"
