"""The parent side of a recording: start the child, read its streams, persist, model.

Pipes are read by plain threads, so neither a flood of events nor a frozen child can stall the
caller; the caller (the Textual app, or ``loopviz record``) calls ``poll()`` when it likes and gets
the new events in time order. What the readers bring goes through the ``Merger`` (merger.py, where
the rules of time order live); what it releases is appended to the trace file and fed to the
timeline model.
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
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import IO, Any

from loopviz import events as ev
from loopviz import wire
from loopviz.decoding import decode_frame
from loopviz.events import AnyEvent
from loopviz.merger import ChildExit, Merger
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


@dataclass(frozen=True)
class _Frame:
    watermark: int
    events: list[AnyEvent]


@dataclass(frozen=True)
class _Output:
    stream: str
    at: int  # the parent's clock when it was read
    text: str


@dataclass(frozen=True)
class _Closed:
    """A stream is read to its end; ``broken`` says what was wrong with the event stream."""

    broken: str | None = None


class Session:
    def __init__(
        self,
        target: Target,
        trace_path: Path | str | None,
        block_threshold: float = 0.1,
        python: str = sys.executable,
        max_model_events: int = MAX_MODEL_EVENTS,
        live_model: bool = True,
    ) -> None:
        self.target = target
        self.trace_path = Path(trace_path) if trace_path else None
        self.block_threshold = block_threshold
        self.python = python
        self.timeline = Timeline(block_threshold_ns=int(block_threshold * 1e9))
        self.max_model_events = max_model_events
        self.model_full = False  # past the cap, events go to the trace file only
        # Without a live view (``loopviz record``), the model is built when the script ends (or
        # a cap's worth at a time): its work, two thirds of this process's, is then not done on
        # the CPUs the script runs on while it runs. The trace file is written as events come.
        self.live_model = live_model
        self._model_backlog: list[AnyEvent] = []
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None
        self.finished = False
        self.merger = Merger()
        self._inbox: queue.SimpleQueue[_Frame | _Output | _Closed] = queue.SimpleQueue()
        # Events decoded by the reader thread, and taken in by poll(): each has one writer, and
        # their difference is the backlog, which the reader keeps under MAX_BACKLOG_EVENTS.
        self.events_read = 0
        self.events_taken = 0
        self._room = threading.Condition()
        self._open_streams = 0
        self._writer: TraceWriter | None = None
        self._unwritten: list[AnyEvent] = []
        self._started_at = 0
        self.broken_reason: str | None = None
        self._trace_closed = False
        self.trace_error: str | None = None

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
        self.process = process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(write_events,),
            env=env,
            process_group=0,
        )
        os.close(write_events)
        assert process.stdout is not None and process.stderr is not None  # both are PIPE
        readers = [
            threading.Thread(target=self._read_events, args=(read_events,)),
            threading.Thread(target=self._read_output, args=(process.stdout, "stdout")),
            threading.Thread(target=self._read_output, args=(process.stderr, "stderr")),
        ]
        self._open_streams = len(readers)
        for reader in readers:
            reader.daemon = True
            reader.start()

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
            broken = None
            try:
                while True:
                    header = _read_exactly(pipe, wire.FRAME_HEADER.size)
                    if header is None:
                        break
                    (length,) = wire.FRAME_HEADER.unpack(header)
                    body = _read_exactly(pipe, length)
                    if body is None:
                        break
                    watermark, events = decode_frame(body)
                    self._inbox.put(_Frame(watermark, events))
                    self.events_read += len(events)
                    self._wait_for_room()
            except wire.WireError as exc:
                broken = str(exc)
        self._inbox.put(_Closed(broken))

    def _wait_for_room(self) -> None:
        """Hold the reader while the parent is far behind: the pipe then fills and the child's
        recorder slows the scenario down, instead of this process growing without bound."""
        with self._room:
            while self.events_read - self.events_taken > MAX_BACKLOG_EVENTS and not self.finished:
                self._room.wait(0.5)

    def backlog(self) -> int:
        """Events this process holds that are not in the model and the trace yet."""
        return self.events_read - self.events_taken + self.merger.held

    def _read_output(self, pipe: IO[bytes], stream: str) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        with pipe:
            while chunk := os.read(pipe.fileno(), 65536):
                self._inbox.put(_Output(stream, _clock(), decoder.decode(chunk)))
            tail = decoder.decode(b"", final=True)
            if tail:
                self._inbox.put(_Output(stream, _clock(), tail))
        self._inbox.put(_Closed())

    # -- taking in ------------------------------------------------------------------------

    def now(self) -> int:
        """The child's clock now: ns since the recording started (parent and child share it)."""
        t0 = self.merger.t0
        if t0 is None:
            return 0
        if self.finished:
            return self.timeline.end_t
        return _clock() - t0

    def poll(self, timeout: float | None = None) -> list[AnyEvent]:
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
        process = self.process
        if process is None:
            raise RuntimeError("poll() before start(): there is no scenario to read from yet")
        if self._open_streams == 0 and not self.finished and process.poll() is not None:
            self._finish(process.returncode)
        released = self.merger.release()
        if self.live_model:
            self._feed_model(released)
        else:
            self._model_backlog += released
            if self.finished or len(self._model_backlog) >= self.max_model_events:
                self._feed_model(self._model_backlog)
                self._model_backlog = []
        if released or self.finished:
            self._persist(released)
        return released

    def _take(self, item: _Frame | _Output | _Closed) -> None:
        if isinstance(item, _Frame):
            self.events_taken += len(item.events)
            self.merger.take_frame(item.watermark, item.events)
        elif isinstance(item, _Output):
            self.merger.take_output(item.stream, item.at, item.text)
        else:
            self._open_streams -= 1
            if item.broken is not None:
                self.broken_reason = item.broken

    def _feed_model(self, events: list[AnyEvent]) -> None:
        if not events:
            return
        room = self.max_model_events - len(self.timeline.events)
        if room >= len(events):
            self.timeline.add_events(events)
            return
        self.timeline.add_events(events[: max(room, 0)])
        if not self.model_full:
            self.model_full = True
            self.timeline.end_detail()
        self.timeline.add_events(e for e in events[max(room, 0) :] if isinstance(e, SUMMARY_KINDS))

    def _finish(self, returncode: int) -> None:
        self.exit_code = _exit_status(returncode)
        self.merger.finish(
            ChildExit(
                at=_clock(),
                started_at=self._started_at,
                status=self.exit_code,
                reason=_death_reason(returncode),
                killed=returncode < 0,
            )
        )
        self.finished = True

    def _persist(self, events: list[AnyEvent]) -> None:
        """Append to the trace; the header waits (briefly) until the loop's kind is known.

        A write that fails (disk full, file system gone) stops the trace, not the run: the
        model keeps everything, and ``trace_error`` says what happened."""
        if self.trace_path is None or self._trace_closed:
            return
        self._unwritten.extend(events)
        try:
            if self._writer is None:
                waited = _clock() - self._started_at > 2e9
                ready = self.merger.loop_impl or self.finished or waited
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

    def header(self) -> dict[str, Any]:
        return {
            "scenario": self.target.label,
            "python": self.merger.python_version,
            "loop": self.merger.loop_impl,
            "unrecorded": self.merger.unrecorded,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "block_threshold_ns": int(self.block_threshold * 1e9),
        }


def _read_exactly(pipe: FileIO, size: int) -> bytearray | None:
    """``size`` bytes from the pipe (read into one buffer: a frame can be megabytes), or None
    if it ends first."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        count = pipe.readinto(view[got:])
        if not count:
            return None
        got += count
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
