"""The event buffer and the writer thread: how events leave the recorded process.

Hot paths (a task step's resume and suspend) append a few ints and strings to one flat list and do
nothing else. The loop thread itself sends what was buffered as one frame of msgpack on the event
pipe (see ``loopviz.wire``) between two iterations, every ``flush_interval``: a thread of ours
that woke to do it would take the GIL from the loop thread, and the loop thread would pay at every
system call it made until that thread got it. The writer thread sends only what a blocked, idle or
stopped loop cannot: the native watchdog wakes it when no frame went out for
``watchdog.FLUSH_STALE_NS`` (without it, it wakes every ``flush_interval``). Tasks are named at
drain time, once ``Task.__init__`` has run.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from loopviz import wire
from loopviz.recorder import core, sources, tasks
from loopviz.recorder.failures import report_internal_error
from loopviz.recorder.streams import RecordedStream
from loopviz.recorder.watchdog import Watchdog

if TYPE_CHECKING:
    from loopviz.recorder.loops import LoopState

_clock = time.perf_counter_ns
# Items (not events: an event is 3 to 10 items) the event buffer may hold before the loop sends
# them even if its flush interval has not passed, about 250,000 events: a quarter of a second of
# the fastest flood, in one loop iteration.
MAX_BUFFERED = 1_000_000
# The event pipe's size asked for (Linux: F_SETPIPE_SZ; 1 MiB is the unprivileged maximum): the
# loop thread writes its own frames and waits when the pipe is full.
PIPE_SIZE = 1 << 20


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
        _enlarge_pipe(fd)
        self.block_threshold_ns = block_threshold_ns
        self.flush_interval = flush_interval
        self.flush_interval_ns = int(flush_interval * 1e9)
        self.watermark_margin_ns = watermark_margin_ns
        self.max_buffered = MAX_BUFFERED
        self.t0 = _clock()
        # The events (kind, t, fields...: layouts in loopviz.wire), appended with one ``extend``
        # call per event, atomic under the GIL, from any thread: a flat list, or the native
        # core's buffer of fixed-size records (core.new_event_buffer).
        self.events = core.new_event_buffer()
        # The pure-Python recorder's creates: flat (t, task id, parent, where, args, coroutine,
        # internal, task, proxy) groups, the task named at drain time (Task.__init__ names it
        # after the proxy exists). The native core queues them in ``events`` itself.
        self.pending_creates: list[Any] = []
        self.loops: list[LoopState] = []
        self.unseen_tasks: list[str] = []  # coroutine names of tasks made past our Task class
        self.task_ids = itertools.count(1)  # next() is atomic: any thread may make tasks
        self._job_ids = itertools.count(1)
        self.stopping = threading.Event()
        self.flushed_at = 0  # when the last frame was sent (the trace clock)
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
        while self.watchdog.wait_for_flush(self.flush_interval):
            try:
                self.drain()
            except Exception:  # a bug of ours: say so where a person will see it, keep running
                report_internal_error()

    def flush_due(self, now: int) -> bool:
        """Whether the loop thread, between two iterations at ``now``, should send a frame: its
        flush interval has passed, or a flood filled the buffer within one iteration. (Its
        write waits while the pipe is full: the parent fell behind, and the loop waits for it
        instead of the buffer growing without bound.)"""
        overdue = now - self.flushed_at >= self.flush_interval_ns
        return overdue or len(self.events) > self.max_buffered

    def drain(self) -> None:
        """Send everything buffered so far as one frame. Safe to call from any thread."""
        with self._write_lock:
            if self._broken:
                self.events.clear()
                del self.pending_creates[:]
                return
            now = self.now()
            try:
                self.events.send(self._resolve_creates(now - self.watermark_margin_ns), self.fd)
            except OSError:
                # The parent is gone (its terminal closed, or it was killed): nobody will ever see
                # this run, and an orphan left running forever is worse. End the scenario as a
                # terminal's hangup would.
                self._broken = True
                os.kill(os.getpid(), signal.SIGTERM)
            self.flushed_at = now
            self.watchdog.flushed()

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
        self.watchdog.stop()  # (and wakes this writer)
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(1.0)  # no write of its own after the last frame, ever
        self.watermark_margin_ns = -(10**18)  # the last frame promises nothing is still to come
        self.drain()


def _enlarge_pipe(fd: int) -> None:
    """Ask for a larger event pipe where the system allows it (room for ~40,000 events while
    the parent is busy); a file, or a system without F_SETPIPE_SZ, is left as it is."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, PIPE_SIZE)
