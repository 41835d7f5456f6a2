"""Putting the child's events in time order: the parent side's rules, with no processes or clocks.

The recorder sends events in frames, each with a watermark: a promise that every event earlier than
it has been sent. Threads record out of order, so an event can arrive after later ones; the merger
holds events until a watermark passes them, then releases them sorted by time (ties keep their
arrival order). On top of the child's events it makes a few of its own, and drops a few:

- a sleep's ``ready`` at its deadline, because the child only sees the wake-up when the loop gets
  round to the timer, which during a block is far too late. A bare yield (sleep 0) is ready at
  once; a sleep of infinity never is. If the task resumes (or ends) before the deadline, the made-up
  ready is cancelled; the child's own ``ready`` for a task whose sleep is followed this way is
  dropped;
- a ``block_begin`` (the watchdog's notice) read after its block's end is stale, and dropped;
- a straggler, an event earlier than one already released, gets the released time, so what comes
  out (and the trace file) stays sorted;
- the child's ``end`` is held back and released last, at the latest time seen, because atexit
  handlers and daemon threads may still print after it. A child killed by a signal (even after its
  own end) ends with the death's reason instead, and nothing made up outlives the end;
- output read from the child's stdout and stderr is stamped on arrival with the parent's clock
  (which the child shares); output before the child's ``hello`` (which gives the clock's origin)
  waits for it.

Everything that needs a clock or a process comes in as an argument, so tests feed hand-written
frames and compare exact event lists (tests/test_merger.py). Events are typed and frozen
(loopviz.events): ``take_frame`` reads the fields these rules need (``_follow_sleep`` a suspend's
wait), the events made here are built in ``finish``, ``_follow_sleep`` and ``_output``, and a
straggler is released as a copy at its new time.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from operator import attrgetter

from msgspec.structs import replace

from loopviz import events as ev
from loopviz.events import AnyEvent


@dataclass(frozen=True)
class ChildExit:
    """How the child process ended, as the parent saw it once all its streams were closed."""

    at: int  # the parent's clock then (ns, the clock the child's t0 is read on)
    started_at: int  # the parent's clock when the child started: the origin if it never said hello
    status: int  # as a shell reports it
    reason: str | None  # why it ended, if the program did not say (None: a clean exit)
    killed: bool  # by a signal: an end the program sent itself came before the kill


class Merger:
    """Frames and output in; events out in time order (see the module docstring)."""

    def __init__(self) -> None:
        # The child's clock origin, and what its first events say about the run (the header).
        self.t0: int | None = None
        self.python_version = ""
        self.loop_impl: str | None = None
        self.unrecorded = ""
        self.finished = False
        self._watermark = -1
        self._released_t = 0
        # Taken in, not released yet, in arrival order: sorted (stably) on release. Runs that
        # arrive in order cost little to sort.
        self._pending: list[AnyEvent] = []
        self._child_end: ev.End | None = None
        self._sleeping: dict[int, ev.Ready] = {}  # task -> the ready made up at its deadline
        # Made-up ready events cancelled while pending, by identity (the value keeps the id unique).
        self._cancelled: dict[int, ev.Ready] = {}
        self._blocks_ended: set[int] = set()  # start times of the blocks whose end was read
        self._early_output: list[tuple[str, int, str]] = []

    @property
    def held(self) -> int:
        """Events taken in and not released yet."""
        return len(self._pending)

    def take_frame(self, watermark: int, events: list[AnyEvent]) -> None:
        """One frame from the child: its events, and the promise that none before ``watermark``
        is still on its way."""
        pending = self._pending
        append = pending.append
        sleeping = self._sleeping
        for event in events:
            # (by exact type, not isinstance: the common kinds cost one or two tests)
            if type(event) is ev.Resume or type(event) is ev.Done:
                append(event)
                ready = sleeping.pop(event.task, None) if sleeping else None
                if ready is not None and ready.t > event.t:  # woken before its deadline
                    self._cancelled[id(ready)] = ready
            elif type(event) is ev.Suspend:
                append(event)
                self._follow_sleep(event)
            elif type(event) in _RULED or (type(event) is ev.Ready and event.task in sleeping):
                self._take_ruled(event)
            else:
                append(event)
        self._watermark = max(self._watermark, watermark)

    def _take_ruled(self, event: AnyEvent) -> None:
        """An event of a kind with a rule of its own (the module docstring)."""
        if isinstance(event, ev.Hello):
            self.python_version = event.python
            self._set_origin(event.t0)
            return
        if isinstance(event, ev.Loop):
            if self.loop_impl is None:
                self.loop_impl = event.impl
                self.unrecorded = event.unrecorded
        elif isinstance(event, ev.End):
            self._child_end = event
            return
        elif isinstance(event, ev.Ready):
            return  # the sleep's ready made up at its deadline stands for it
        elif isinstance(event, ev.BlockBegin) and event.start in self._blocks_ended:
            return  # the watchdog's notice came after the block itself
        elif isinstance(event, ev.Block):
            self._blocks_ended.add(event.start)
        self._pending.append(event)

    def take_output(self, stream: str, at: int, text: str) -> None:
        """Text the child wrote to its stdout or stderr, read at ``at`` on the parent's clock."""
        if self.t0 is None:  # before the child's hello: its clock's origin is not known yet
            self._early_output.append((stream, at, text))
        else:
            self._pending.append(_output(stream, at - self.t0, text))

    def finish(self, child: ChildExit) -> None:
        """The child has exited and every stream is read: the next ``release`` gives the rest,
        the end last."""
        t0 = self.t0
        if t0 is None:  # the child died before saying hello: time from its start
            t0 = child.started_at
            self._set_origin(t0)
        pending = self._pending
        pending.sort(key=_time_of)  # (stable: as release would have it)
        latest = self._released_t
        for event in reversed(pending):  # the child's latest: past the made-up ones at the tail
            if not _made_up(event):
                latest = max(latest, event.t)
                break
        end = self._child_end
        if end is None or child.killed:
            end = ev.End(max(latest, child.at - t0), child.status, child.reason)
        else:
            end = replace(end, t=max(end.t, latest))
        after = bisect_right(pending, end.t, key=_time_of)  # only made-up ones can be past it
        del pending[after:]
        pending.append(end)
        self.finished = True

    def release(self) -> list[AnyEvent]:
        """The events no later one can precede any more (all of them once finished), in order."""
        pending = self._pending
        if not pending:
            return []
        pending.sort(key=_time_of)
        n = len(pending) if self.finished else bisect_right(pending, self._watermark, key=_time_of)
        released = pending[:n]
        del pending[:n]
        if not released or (not self._cancelled and released[0].t >= self._released_t):
            if released:
                self._released_t = released[-1].t
            return released  # (in time order, after what came out before: nothing to change)
        kept = []
        cancelled = self._cancelled
        for event in released:
            if cancelled and cancelled.pop(id(event), None) is event:
                continue
            if event.t < self._released_t:  # a straggler: what comes out stays sorted
                event = replace(event, t=self._released_t)
            self._released_t = event.t
            kept.append(event)
        return kept

    def _set_origin(self, t0: int) -> None:
        """The child's clock starts at ``t0`` (on the parent's clock): the output held waiting
        for it goes in."""
        self.t0 = t0
        for stream, at, text in self._early_output:
            self._pending.append(_output(stream, at - t0, text))
        self._early_output = []

    def _follow_sleep(self, suspend: ev.Suspend) -> None:
        """Make a sleep's ready at its deadline (a bare yield's at once; infinity's never)."""
        wait = suspend.waiting_on
        if wait.kind != "sleep" or not (wait.deadline is not None or wait.delay_ns == 0):
            return
        t = suspend.t
        ready = ev.Ready(t if wait.deadline is None else max(wait.deadline, t), suspend.task,
                         ev.SLEEP_ENDED)  # fmt: skip
        self._sleeping[suspend.task] = ready
        self._pending.append(ready)


# The kinds take_frame hands to _take_ruled (a child's ready only while its task's sleep is
# followed).
_RULED = frozenset({ev.Hello, ev.Loop, ev.End, ev.BlockBegin, ev.Block})


def _output(stream: str, t: int, text: str) -> ev.Output:
    return ev.Output(max(t, 0), stream, text)


def _made_up(event: AnyEvent) -> bool:
    """A ready event made here at a sleep's deadline, not seen by the recorder."""
    return isinstance(event, ev.Ready) and event.cause == ev.SLEEP_ENDED


_time_of = attrgetter("t")
