"""The event buffer and the writer thread: how events leave the recorded process.

Hot paths (a task step's resume and suspend) append a few ints and strings to one flat list and do
nothing else; a writer thread drains that list every few milliseconds into framed msgpack on the
event pipe (see ``loopviz.wire``). Tasks are named at drain time, once ``Task.__init__`` has run.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from loopviz import wire
from loopviz.recorder import core, sources, tasks
from loopviz.recorder.failures import report_internal_error
from loopviz.recorder.streams import RecordedStream
from loopviz.recorder.watchdog import Watchdog

if TYPE_CHECKING:
    from loopviz.recorder.loops import LoopState

_clock = time.perf_counter_ns
# Items (not events: an event is 3 to 10 items) the event buffer may hold before the loop waits
# for the writer, about 250,000 events: a quarter of a second of the fastest flood.
MAX_BUFFERED = 1_000_000


class Recorder:
    """One per recorded process: owns the event buffer, the pipe, and the helper threads."""

    def __init__(
        self,
        fd: int,
        block_threshold_ns: int,
        flush_interval: float = 0.005,
        watermark_margin_ns: int = 5_000_000,
    ) -> None:
        self.fd = fd
        self.block_threshold_ns = block_threshold_ns
        self.flush_interval = flush_interval
        self.watermark_margin_ns = watermark_margin_ns
        self.max_buffered = MAX_BUFFERED
        self.t0 = _clock()
        # The events (kind, t, fields...: layouts in loopviz.wire), appended with one ``extend``
        # call per event, atomic under the GIL, from any thread: a flat list, or the native
        # core's buffer of fixed-size records (core.new_event_buffer).
        self.events = core.new_event_buffer()
        # Flat (t, task id, parent, where, args, coroutine, internal, task, proxy) groups, the
        # task named at drain time: Task.__init__ names it after the proxy exists.
        self.pending_creates: list[Any] = []
        self.loops: list[LoopState] = []
        self.unseen_tasks: list[str] = []  # coroutine names of tasks made past our Task class
        self.task_ids = itertools.count(1)  # next() is atomic: any thread may make tasks
        self._job_ids = itertools.count(1)
        self.stopping = threading.Event()
        self._drained = threading.Event()  # set by the writer after each frame
        self._write_lock = threading.Lock()
        self._broken = False
        self._writer = threading.Thread(target=self._write_loop, name="loopviz-writer", daemon=True)
        self.watchdog = Watchdog(self)

    def now(self) -> int:
        return _clock() - self.t0

    def start(self) -> None:
        self.emit(wire.HELLO, self.t0, sys.version.split()[0], os.getpid())
        sources.file_named = self._file_named
        self._writer.start()
        self.watchdog.start()

    def emit(self, kind: int, *fields: object) -> None:
        """Append one event stamped now (for rare events; hot paths extend ``events`` directly)."""
        self.events.extend((kind, _clock() - self.t0, *fields))

    def _file_named(self, shown: str, path: str) -> None:
        """Say which file a ``file:line`` means, with a digest of what it held when it ran, so a
        viewer showing its source later can tell that it changed since."""
        try:
            with open(path, "rb") as file:
                digest = hashlib.sha256(file.read()).hexdigest()
        except OSError:
            digest = ""
        self.emit(wire.SOURCE, shown, path, digest)

    def next_job_id(self) -> int:
        return next(self._job_ids)

    # -- writer ---------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not self.stopping.wait(self.flush_interval):
            try:
                self.drain()
            except Exception:  # a bug of ours: say so where a person will see it, keep running
                report_internal_error()
            self._drained.set()

    def wait_for_writer(self) -> None:
        """Hold the loop (between two iterations) until the writer has sent the buffer down to
        half of ``max_buffered``: the parent has fallen behind, and the buffer would otherwise
        grow without bound. Only a flood of several hundred thousand events a second gets here."""
        while (
            len(self.events) > self.max_buffered // 2
            and not self._broken
            and not self.stopping.is_set()
        ):
            self._drained.clear()
            self._drained.wait(0.05)

    def drain(self) -> None:
        """Send everything buffered so far as one frame. Safe to call from any thread."""
        with self._write_lock:
            if self._broken:
                self.events.clear()
                del self.pending_creates[:]
                return
            watermark = self.now() - self.watermark_margin_ns
            frame = self.events.frame(self._resolve_creates(watermark))
            try:
                view = memoryview(frame)
                while view:
                    written = os.write(self.fd, view)
                    view = view[written:]
            except OSError:
                # The parent is gone (its terminal closed, or it was killed): nobody will ever see
                # this run, and an orphan left running forever is worse. End the scenario as a
                # terminal's hangup would.
                self._broken = True
                os.kill(os.getpid(), signal.SIGTERM)

    def _resolve_creates(self, watermark: int) -> list[Any]:
        """Start a frame: the watermark, then a ``create`` for every task made since the last."""
        pending = self.pending_creates
        n = len(pending)
        groups = pending[:n]
        del pending[:n]
        flat: list[Any] = [watermark]
        for i in range(0, n, 9):
            group = groups[i : i + 9]
            t, task_id, parent, where, args, coro, internal, task, proxy = group
            if not proxy.created:
                if proxy.created is False:  # Task.__init__ still running in another thread
                    pending.extend(group)
                continue
            name = task.get_name()
            proxy.sent_name = name
            flat.extend((wire.CREATE, t, task_id, name, coro, parent, where, internal,
                         proxy._state.loop_id, args))  # fmt: skip
        return flat

    # -- shutdown -------------------------------------------------------------------------

    def finish(self, exit_code: int, error: str | None) -> None:
        """Record the end, stop the helper threads and push the last frame out."""
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, RecordedStream):
                stream.flush()
        unseen = tasks.unseen_event(self.unseen_tasks)
        if unseen:
            self.emit(*unseen)
        self.emit(wire.END, exit_code, error)
        self.stopping.set()
        self.watchdog.stop()
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(1.0)  # no write of its own after the last frame, ever
        self.watermark_margin_ns = -(10**18)  # the last frame promises nothing is still to come
        self.drain()
