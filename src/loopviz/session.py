"""The parent side of a recording: start the child, read its streams, merge, persist, model.

Pipes are read by plain threads, so neither a flood of events nor a frozen child can stall the
caller; the caller (the Textual app, or ``loopviz record``) calls ``poll()`` when it likes and gets
the new events in time order. Events are released once the child's watermark promises nothing
earlier is still on its way, appended to the trace file, and fed to the timeline model.
"""

from __future__ import annotations

import codecs
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import msgspec

from loopviz import events as ev
from loopviz import wire
from loopviz.model import Timeline
from loopviz.trace import TraceWriter

_clock = time.perf_counter_ns
# The live view holds the detail of at most this many events (about 140 MB): a run that goes on
# for hours keeps recording to the trace file, and past the cap the view keeps only what
# SUMMARY_KINDS say (blocks, the end). See docs/long-runs.md.
MAX_MODEL_EVENTS = 1_000_000
# Past the cap, the view still takes these in: a block hours into a run is still shown.
SUMMARY_KINDS = (ev.BlockBegin, ev.Block, ev.Unretrieved, ev.End)
# Events read from the child but not yet taken in by poll() before the reader stops reading.
MAX_BACKLOG_EVENTS = 200_000


@dataclass
class Target:
    """What to run: a script path (or, with ``module``, a module name) and its arguments."""

    script: Path
    args: list[str]
    module: bool = False

    @property
    def label(self) -> str:
        return f"-m {self.script}" if self.module else str(self.script)

    @property
    def name(self) -> str:
        return str(self.script) if self.module else self.script.name


class Session:
    def __init__(
        self,
        target: Target,
        trace_path: Path | str | None,
        block_threshold: float = 0.1,
        python: str = sys.executable,
        max_model_events: int = MAX_MODEL_EVENTS,
    ) -> None:
        self.target = target
        self.trace_path = Path(trace_path) if trace_path else None
        self.block_threshold = block_threshold
        self.python = python
        self.timeline = Timeline(block_threshold_ns=int(block_threshold * 1e9))
        self.max_model_events = max_model_events
        self.model_full = False  # past the cap, events go to the trace file only
        self.process: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.finished = False
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        # Events decoded by the reader thread, and taken in by poll(): each has one writer, and
        # their difference is the backlog, which the reader keeps under MAX_BACKLOG_EVENTS.
        self.events_read = 0
        self.events_taken = 0
        self._room = threading.Condition()
        # Events taken in but not released yet, in arrival order: sorted by time (a stable sort,
        # so ties keep their order) when released. Runs that arrive in order cost little to sort.
        self._pending: list[ev.AnyEvent] = []
        self._watermark = -1
        self._released_t = 0
        self._open_streams = 0
        self._t0: int | None = None
        self._python_version = ""
        self._loop_impl: str | None = None
        self._writer: TraceWriter | None = None
        self._unwritten: list[ev.AnyEvent] = []
        self._started_at = 0
        self._child_end: ev.End | None = None  # the child's own end event, sent last
        self.broken_reason: str | None = None
        self._trace_closed = False
        self.trace_error: str | None = None
        self._sleeping: dict[int, ev.Ready] = {}  # task -> its synthetic ready event
        # Pending ready events not to release, by id() (held here, so no other object takes the id)
        self._cancelled: dict[int, ev.Ready] = {}
        self._blocks_ended: set[int] = set()  # start times of the blocks whose end was read
        self._early_output: list[tuple] = []
        self._unrecorded = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        read_events, write_events = os.pipe()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [
            self.python, "-m", "loopviz.recorder",
            "--events-fd", str(write_events),
            "--block-threshold", str(self.block_threshold),
            *(["--module"] if self.target.module else []),
            str(self.target.script), *self.target.args,
        ]  # fmt: skip
        self._started_at = _clock()
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_events,),
            env=env,
            process_group=0,
        )
        os.close(write_events)
        readers = [
            (self._read_events, read_events),
            (self._read_output, self.process.stdout, "stdout"),
            (self._read_output, self.process.stderr, "stderr"),
        ]
        self._open_streams = len(readers)
        for target, *args in readers:
            threading.Thread(target=target, args=args, daemon=True).start()

    def stop(self, grace: float = 3.0) -> None:
        """Ask the scenario to stop as Ctrl-C would, then insist. What was recorded is kept."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        steps = ((signal.SIGINT, False), (signal.SIGTERM, True), (signal.SIGKILL, True))
        for sig, whole_group in steps:
            try:
                if whole_group:
                    os.killpg(process.pid, sig)
                else:
                    process.send_signal(sig)
            except ProcessLookupError:
                return
            try:
                process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    def wait(self, poll_interval: float = 0.02) -> None:
        """Poll until the child has exited and every stream is drained (for headless use)."""
        while not self.finished:
            self.poll(timeout=poll_interval)

    # -- reader threads -------------------------------------------------------------------

    def _read_events(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            try:
                while True:
                    header = _read_exactly(pipe, wire.FRAME_HEADER.size)
                    if header is None:
                        break
                    (length,) = wire.FRAME_HEADER.unpack(header)
                    body = _read_exactly(pipe, length)
                    if body is None:
                        break
                    watermark, events = wire.decode_frame(body)
                    self._inbox.put(("frame", watermark, events))
                    self.events_read += len(events)
                    self._wait_for_room()
            except wire.WireError as exc:
                self._inbox.put(("broken", str(exc)))
        self._inbox.put(("eof",))

    def _wait_for_room(self) -> None:
        """Hold the reader while the parent is far behind: the pipe then fills and the child's
        recorder slows the scenario down, instead of this process growing without bound."""
        with self._room:
            while self.events_read - self.events_taken > MAX_BACKLOG_EVENTS and not self.finished:
                self._room.wait(0.5)

    def backlog(self) -> int:
        """Events this process holds that are not in the model and the trace yet."""
        return self.events_read - self.events_taken + len(self._pending)

    def _read_output(self, pipe, stream: str) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with pipe:
            while chunk := pipe.read1(65536):
                self._inbox.put(("output", stream, _clock(), decoder.decode(chunk)))
            tail = decoder.decode(b"", final=True)
            if tail:
                self._inbox.put(("output", stream, _clock(), tail))
        self._inbox.put(("eof",))

    # -- merging --------------------------------------------------------------------------

    def now(self) -> int:
        """The child's clock now: ns since the recording started (parent and child share it)."""
        if self._t0 is None:
            return 0
        if self.finished:
            return self.timeline.end_t
        return _clock() - self._t0

    def poll(self, timeout: float | None = None) -> list[ev.AnyEvent]:
        """Take in what the readers have, and return the events released in time order."""
        try:
            item = self._inbox.get(timeout=timeout) if timeout else self._inbox.get_nowait()
        except queue.Empty:
            item = None
        while item is not None:
            self._take(item)
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                item = None
        with self._room:
            self._room.notify_all()
        if self._open_streams == 0 and not self.finished and self.process.poll() is not None:
            self._finish()
            released = self._release(None)
        else:
            released = self._release(self._watermark)
        self.timeline.now = self.now()
        return released

    def _take(self, item: tuple) -> None:
        kind = item[0]
        if kind == "frame":
            _kind, watermark, events = item
            self.events_taken += len(events)
            for event in events:
                if isinstance(event, ev.Hello):
                    self._t0 = event.t0
                    self._python_version = event.python
                    for early in self._early_output:
                        self._push_output(early)
                    self._early_output = []
                    continue
                if isinstance(event, ev.Loop) and self._loop_impl is None:
                    self._loop_impl = event.impl
                    self._unrecorded = event.unrecorded
                if isinstance(event, ev.End):  # held back: the program's atexit handlers and
                    self._child_end = event  # daemon threads may still print after it
                    continue
                if isinstance(event, ev.Ready) and event.task in self._sleeping:
                    continue  # the sleep's own ready event, at its deadline, stands for it
                if isinstance(event, ev.BlockBegin) and event.start in self._blocks_ended:
                    continue  # the watchdog's notice came after the block itself: stale
                if isinstance(event, ev.Block):
                    self._blocks_ended.add(event.start)
                self._pending.append(event)
                self._track_readiness(event)
            self._watermark = max(self._watermark, watermark)
        elif kind == "output":
            if self._t0 is None:  # before the child's hello: its clock is not known yet
                self._early_output.append(item)
            else:
                self._push_output(item)
        elif kind == "eof":
            self._open_streams -= 1
        elif kind == "broken":
            self.broken_reason = item[1]

    def _push_output(self, item: tuple) -> None:
        """Output read from the child's own stdout/stderr (not via print), stamped on arrival."""
        _kind, stream, at, text = item
        t = max(at - self._t0, 0)
        self._pending.append(ev.Output(t, stream, text))

    def _track_readiness(self, event: ev.AnyEvent) -> None:
        """Make a sleep's ``ready`` event at its deadline: the child only sees the wake-up when
        the loop gets round to the timer, which during a block is far too late."""
        if isinstance(event, ev.Suspend):
            wait = event.waiting_on
            if wait.kind == "sleep" and (wait.deadline is not None or wait.delay_ns == 0):
                # a bare yield (sleep 0) is ready again at once; a sleep of infinity never is
                at = event.t if wait.deadline is None else wait.deadline
                ready = ev.Ready(max(at, event.t), event.task, "sleep ended")
                self._sleeping[event.task] = ready
                self._pending.append(ready)
        elif isinstance(event, (ev.Resume, ev.Done)):
            woken = self._sleeping.pop(event.task, None)
            if woken is not None and woken.t > event.t:
                self._cancelled[id(woken)] = woken  # woken before its deadline: never ready so

    def _release(self, up_to: int | None) -> list[ev.AnyEvent]:
        pending = self._pending
        pending.sort(key=_time_of)
        n = len(pending) if up_to is None else bisect_right(pending, up_to, key=_time_of)
        released = []
        cancelled = self._cancelled
        for event in pending[:n]:
            if cancelled and cancelled.pop(id(event), None) is event:
                continue
            if event.t < self._released_t:  # a straggler: keep the file sorted
                event = msgspec.structs.replace(event, t=self._released_t)
            self._released_t = event.t
            released.append(event)
        del pending[:n]
        if released:
            self._feed_model(released)
        if released or self.finished:
            self._persist(released)
        return released

    def _feed_model(self, events: list[ev.AnyEvent]) -> None:
        room = self.max_model_events - len(self.timeline.events)
        if room >= len(events):
            self.timeline.add_events(events)
            return
        self.timeline.add_events(events[: max(room, 0)])
        if not self.model_full:
            self.model_full = True
            self.timeline.end_detail()
        self.timeline.add_events(e for e in events[max(room, 0) :] if isinstance(e, SUMMARY_KINDS))

    def _finish(self) -> None:
        self.exit_code = _exit_status(self.process.returncode)
        if self._t0 is None:  # the child died before saying hello: time from our own start
            self._t0 = self._started_at
            for early in self._early_output:
                self._push_output(early)
        # The end is the real end, and last: after whatever the program still printed at exit
        # (atexit handlers, daemon threads), never before. Events made up here (a sleep's ready
        # at its deadline) never outlive it.
        seen = [e.t for e in self._pending if not _is_synthetic(e)]
        end = self._child_end
        if end is None or self.process.returncode < 0:  # no end of its own, or killed after it
            end_t = max(self._released_t, _clock() - self._t0, *seen)
            reason = _death_reason(self.process.returncode)
            end = ev.End(end_t, self.exit_code, reason)
        else:
            end = msgspec.structs.replace(end, t=max(end.t, self._released_t, *seen))
        self._pending = [e for e in self._pending if not (_is_synthetic(e) and e.t > end.t)]
        self._pending.append(end)
        self.finished = True

    def _persist(self, events: list[ev.AnyEvent]) -> None:
        """Append to the trace; the header waits (briefly) until the loop's kind is known.

        A write that fails (disk full, file system gone) stops the trace, not the run: the
        model keeps everything, and ``trace_error`` says what happened."""
        if self.trace_path is None or self._trace_closed:
            return
        self._unwritten.extend(events)
        try:
            if self._writer is None:
                waited = _clock() - self._started_at > 2e9
                ready = self._loop_impl or self.finished or waited
                if not (ready or len(self._unwritten) > 10_000):
                    return
                self._writer = TraceWriter(self.trace_path, self.header())
            self._writer.write(self._unwritten)
            self._unwritten = []
            if self.finished:
                self._writer.close()
                self._trace_closed = True
            else:
                self._writer.flush()
        except OSError as exc:
            self.trace_error = f"could not write {self.trace_path}: {exc.strerror or exc}"
            self._trace_closed = True
            self._unwritten = []
            if self._writer is not None:
                self._writer.abandon()

    def header(self) -> dict:
        return {
            "scenario": self.target.label,
            "python": self._python_version,
            "loop": self._loop_impl,
            "unrecorded": self._unrecorded,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "block_threshold_ns": int(self.block_threshold * 1e9),
        }


def _is_synthetic(event: ev.AnyEvent) -> bool:
    """Made by the parent, not seen by the recorder (see ``_track_readiness``)."""
    return isinstance(event, ev.Ready) and event.cause == "sleep ended"


def _time_of(event: ev.AnyEvent) -> int:
    return event.t


def _read_exactly(pipe, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = pipe.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _exit_status(returncode: int) -> int:
    """The status a shell would report: 128 + N for a death by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _death_reason(returncode: int) -> str | None:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"the scenario was killed by {name}"
    return "the scenario's process ended without reporting how" if returncode else None
