"""The recording machinery: event buffer, writer thread, watchdog, task factory and loop hooks.

Hot paths (a task step's resume and suspend) append a few ints and strings to one flat list and do
nothing else; a writer thread drains that list every few milliseconds into framed msgpack on the
event pipe (see ``loopviz.wire``). A watchdog thread samples the loop thread's stack when a step
runs past the block threshold, so the culprit line is known *while* the loop is blocked.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import collections.abc
import concurrent.futures
import contextlib
import functools
import gc
import hashlib
import itertools
import os
import reprlib
import signal
import sys
import threading
import time
import traceback
import types
import weakref

from loopviz import wire
from loopviz.recorder import sources, tasks, threads
from loopviz.recorder.libraries import describe_callable
from loopviz.recorder.waits import UNKNOWN_WAIT, YIELD, WaitNamer
from loopviz.wire import NONE

_clock = time.perf_counter_ns
# Items (not events: an event is 3 to 10 items) the event buffer may hold before the loop waits
# for the writer, about 250,000 events: a quarter of a second of the fastest flood.
MAX_BUFFERED = 1_000_000
# A task's wake-up is ``task_wakeup`` (C Task, a builtin method) or ``__wakeup`` (Python Task, a
# bound method); its steps are scheduled as TaskStepMethWrapper objects, rejected by type alone.
_WAKEUP_TYPES = frozenset({types.BuiltinMethodType, types.MethodType})
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
# 3.13.0 renames unnamed tasks "None" whenever a task factory is installed (gh-124269).
# Deadlines further than this (about 292 years) from now are "never": they do not fit an int64.
_FAR_FUTURE_NS = 2**63 - 1


def report_internal_error() -> None:
    """Write loopviz's own traceback to the real stderr (fd 2), which the parent passes on; the
    scenario's sys.stderr feeds the event stream and would swallow it."""
    text = "loopviz: internal error in the recorder\n" + traceback.format_exc()
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))


_reported_failures: set[str] = set()


def report_recording_failure(what: str) -> None:
    """A failure inside recording code, contained as Trio contains a failing Instrument: the
    program's step goes on untouched, this detail of the recording is lost, and the user is
    told once, in one line on the real stderr."""
    if what in _reported_failures:
        return
    _reported_failures.add(what)
    error = sys.exc_info()[1]
    text = (
        f"loopviz: could not record {what} ({type(error).__name__}: {error}); the program is "
        "unaffected, and only that detail is missing from the recording\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, text.encode("utf-8", "replace"))


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
        self.t0 = _clock()
        # Flat event buffer: kind, t, fields... (layouts in loopviz.wire). Appended with one
        # ``extend`` call per event, which is atomic under the GIL, from any thread.
        self.events: list = []
        # Flat (t, task id, parent, where, args, coroutine, internal, task, proxy) groups, the
        # task named at drain time: Task.__init__ names it after the proxy exists.
        self.pending_creates: list = []
        self.loops: list[LoopState] = []
        self.unseen_tasks: list[str] = []  # coroutine names of tasks made past our Task class
        self.task_ids = itertools.count(1)  # next() is atomic: any thread may make tasks
        self._job_ids = itertools.count(1)
        self._stop = threading.Event()
        self._drained = threading.Event()  # set by the writer after each frame
        self._write_lock = threading.Lock()
        self._broken = False
        self._writer = threading.Thread(target=self._write_loop, name="loopviz-writer", daemon=True)
        self._watch_interval = min(0.02, block_threshold_ns / 5e9)
        # A watchdog tick this late was kept waiting for the GIL: C code held it (a huge
        # sorted(), a regex, a C extension), and nothing in Python could run, us included.
        self._late_ns = int(self._watch_interval * 1e9) + block_threshold_ns // 2
        self._watchdog = threading.Thread(
            target=self._watch_loop, name="loopviz-watchdog", daemon=True
        )

    def now(self) -> int:
        return _clock() - self.t0

    def start(self) -> None:
        self.emit(wire.HELLO, self.t0, sys.version.split()[0], os.getpid())
        sources.file_named = self._file_named
        self._writer.start()
        self._watchdog.start()

    def emit(self, kind: int, *fields) -> None:
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
        while not self._stop.wait(self.flush_interval):
            try:
                self.drain()
            except Exception:  # a bug of ours: say so where a person will see it, keep running
                report_internal_error()
            self._drained.set()

    def wait_for_writer(self) -> None:
        """Hold the loop (between two iterations) until the writer has sent the buffer down to
        half of MAX_BUFFERED: the parent has fallen behind, and the buffer would otherwise grow
        without bound. Only a flood of several hundred thousand events a second gets here."""
        while len(self.events) > MAX_BUFFERED // 2 and not self._broken and not self._stop.is_set():
            self._drained.clear()
            self._drained.wait(0.05)

    def drain(self) -> None:
        """Send everything buffered so far as one frame. Safe to call from any thread."""
        with self._write_lock:
            if self._broken:
                del self.events[:]
                del self.pending_creates[:]
                return
            watermark = self.now() - self.watermark_margin_ns
            events = self.events
            n = len(events)
            flat = self._resolve_creates(watermark)
            flat += events[:n]
            del events[:n]
            frame = wire.encode_frame(flat)
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

    def _resolve_creates(self, watermark: int) -> list:
        """Start a frame: the watermark, then a ``create`` for every task made since the last."""
        pending = self.pending_creates
        n = len(pending)
        groups = pending[:n]
        del pending[:n]
        flat = [watermark]
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

    # -- watchdog -------------------------------------------------------------------------

    def sampled(self, sample: tuple | None, start: int, end: int) -> tuple[str, str, str, bool]:
        """(where, code, stack, gil) for the ``block`` event of a block from ``start`` to ``end``.

        Without a sample of this block, the watchdog did not look while it lasted. If it lasted
        well past the time the watchdog needed to notice it, the watchdog could not run at all:
        C code held the GIL for the whole block (``gil`` true, no line known)."""
        if sample is not None and sample[0] == start:
            return sample[1:]
        return "", "", "", end - start > self.block_threshold_ns + self._late_ns

    def _watch_loop(self) -> None:
        interval = self._watch_interval
        late_ns = self._late_ns
        last_tick = self.now()
        while not self._stop.wait(interval):
            now = self.now()
            starved_since = last_tick if now - last_tick > late_ns else 0
            last_tick = now
            for state in self.loops:
                try:
                    state.check_block(self, starved_since)
                except Exception:  # a bug of ours must not stop the watchdog for good
                    report_internal_error()

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
        self._stop.set()
        if self._writer.is_alive() and self._writer is not threading.current_thread():
            self._writer.join(1.0)  # no write of its own after the last frame, ever
        self.watermark_margin_ns = -(10**18)  # the last frame promises nothing is still to come
        self.drain()


class LoopState:
    """Per-loop step bookkeeping shared by the task proxies and the watchdog."""

    def __init__(self, recorder: Recorder, loop: asyncio.AbstractEventLoop) -> None:
        self.recorder = recorder
        self.loop_ref = weakref.ref(loop)
        self.thread_id = threading.get_ident()
        self.loop_id = 0  # 1, 2...: in the order the scenario made its loops
        self.step_start = 0  # 0 = no step running
        self.step_task = NONE
        # Time spent in eager steps nested in the step that began at ``nested_in``.
        self.nested_in = 0
        self.nested_ns = 0
        # (step start, where, code, stack, gil) sampled by the watchdog for the step now running
        self.block_sample: tuple[int, str, str, str, bool] | None = None
        # Time the loop left select() or finished a step: a callback has run since then.
        # 0 while the loop is not running (or its select() cannot be seen, as on uvloop).
        self.callback_start = 0
        self.in_select = False
        self.callback_sample: tuple[int, str, str, str, bool] | None = None
        self.inner_factory = None
        self.jobs = JobTable()
        # futures other threads handed back a result for -> (thread, what): see threads.py
        self.handed_back: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # task id -> its innermost asyncio.timeout (a Timeout object, read at each suspend)
        self.timeouts: dict[int, object] = {}
        offset = loop.time() * 1e9 - (_clock())
        t0 = recorder.t0

        def loop_time_to_ns(when: float) -> int:
            """A loop-clock time on the trace clock; NONE for a time no run reaches (a sleep of
            infinity, or of centuries), which also keeps it inside the wire's int64."""
            ns = when * 1e9 - offset - t0
            return int(ns) if -_FAR_FUTURE_NS < ns < _FAR_FUTURE_NS else NONE

        self.loop_time_to_ns = loop_time_to_ns
        self.waits = WaitNamer(self.loop_time_to_ns, task_id_of, self.jobs.get_by_future)

    def long_step(self, start: int, end: int) -> bool:
        """Whether the step from ``start`` to ``end`` held the loop past the threshold by itself,
        not counting the eager first steps of tasks it made (3.12+), recorded as their own."""
        nested = self.nested_ns if self.nested_in == start else 0
        return end - start - nested >= self.recorder.block_threshold_ns

    def timeout_deadline(self, timeout) -> int:
        when = getattr(timeout, "_when", None)
        if when is None or getattr(getattr(timeout, "_state", None), "value", "") != "active":
            return NONE
        return self.loop_time_to_ns(when)

    def check_block(self, recorder: Recorder, starved_since: int = 0) -> None:
        """Called by the watchdog: sample the culprit of a step or callback past the threshold.

        ``starved_since`` is when the watchdog last ran on time, if it was kept from running
        since (0 otherwise): the step still running now spent that time inside C code that
        held the GIL, and the line sampled now is only the last Python line it reached.

        A ``block_begin`` is stamped with the moment the step crossed the threshold: no later
        than the check that found it still running, so always before that step's ``block``
        (a time read at the check could fall after the step's end, read just before it)."""
        checked_at = recorder.now()
        start = self.step_start
        task = self.step_task
        if self.step_start != start:
            return  # a step began or ended while we read: look again next time
        if start:
            if self.block_sample and self.block_sample[0] == start:
                return
            if checked_at - start < recorder.block_threshold_ns:
                return
            sample = self._sample()
            if self.step_start != start:
                return  # the step ended while we looked
            gil = bool(starved_since)  # this step held the loop while C code held the GIL
            self.block_sample = (start, *sample, gil)
            became_block = start + recorder.block_threshold_ns  # <= checked_at < the step's end
            recorder.events.extend((wire.BLOCK_BEGIN, became_block, task, start, *sample, gil))
            return
        callback_start = self.callback_start
        if not callback_start or self.in_select:
            return
        if self.callback_sample and self.callback_sample[0] == callback_start:
            return
        if checked_at - callback_start < recorder.block_threshold_ns:
            return
        sample = self._sample()
        if self.callback_start != callback_start or self.step_start or self.in_select:
            return
        gil = bool(starved_since)
        self.callback_sample = (callback_start, *sample, gil)
        became_block = callback_start + recorder.block_threshold_ns
        recorder.events.extend((wire.BLOCK_BEGIN, became_block, NONE, callback_start, *sample, gil))

    def _sample(self) -> tuple[str, str, str]:
        """(where, code, stack) of the innermost user frame the loop thread is running now,
        within the step running now: frames below our proxy's ``send`` (the loop itself, the
        program's ``asyncio.run`` line) never stand for a step's code."""
        frame = sys._current_frames().get(self.thread_id)
        user_frames, in_task_step = _user_frames_of_step(frame)
        if not user_frames:  # a task's step past its own code, or a C function called back
            return "", "" if in_task_step else _callback_running(frame), ""
        culprit = user_frames[0]
        stack = "\n".join(sources.describe_frame(f) for f in user_frames[:12])
        return sources.where(culprit), sources.source_line(culprit), stack

    def end_callbacks(self, now: int) -> None:
        """The loop is back in select(): report the callbacks since ``callback_start`` if they held
        the loop past the threshold (a blocking call_soon/call_later/protocol callback)."""
        start = self.callback_start
        recorder = self.recorder
        if start and not self.step_start and now - start >= recorder.block_threshold_ns:
            sample = recorder.sampled(self.callback_sample, start, now)
            recorder.events.extend((wire.BLOCK, now, NONE, start, now, *sample))


def _callback_running(frame) -> str:
    """``time.sleep() called back by the loop``: a C function run as a callback has no frame of
    its own, so the culprit is named from the Handle running it, when there is one."""
    while frame is not None:
        if frame.f_code is _HANDLE_RUN_CODE:
            callback = getattr(frame.f_locals.get("self"), "_callback", None)
            return f"{describe_callable(callback)} called back by the loop" if callback else ""
        frame = frame.f_back
    return ""


def _user_frames_of_step(frame) -> tuple[list, bool]:
    """The user frames on the loop thread's stack, innermost first, that belong to the step
    running now: those above our proxy's ``send`` frame, or, for a callback, above the
    ``Handle._run`` that called it (never the loop's own frames or the ``asyncio.run`` line).

    Also says whether a task's step is running (``send`` was reached), so that a step past its
    own code is never taken for a callback.

    A library's task that blocks before it ever suspends (a handler calling ``time.sleep``)
    shows the program's function only here: the outermost of these is its ``entry``."""
    frames = []
    while frame is not None:
        code = frame.f_code
        if code is _HANDLE_RUN_CODE:  # a callback's frames end here: below is the loop itself
            return frames, False
        if code is _SEND_CODE:
            proxy = frame.f_locals.get("self")
            if frames and getattr(proxy, "seek_entry", False):
                proxy._record_entry(frames[-1].f_code)
            return frames, True
        if sources.is_user_code(code):
            frames.append(frame)
        frame = frame.f_back
    return frames, False


class JobTable(dict):
    """Executor futures awaited by tasks -> (job id, function name), forgotten when done."""

    def get_by_future(self, fut: object) -> tuple[int, str] | None:
        return self.get(id(fut))

    def track(self, fut: asyncio.Future, job: int, func: str) -> None:
        key = id(fut)
        self[key] = (job, func)
        fut.add_done_callback(lambda _f: self.pop(key, None))


def task_id_of(task: object) -> int:
    """The id loopviz gave ``task`` (NONE for a task it never saw): kept in a slot of the task."""
    return getattr(task, "_loopviz_task_id", NONE)


# Results shown by their repr: types whose repr runs none of the program's code (containers
# are not: their items' reprs would run).
_SHOWN_RESULTS = frozenset({int, float, complex, str, bytes, bool})


def _outcome_of(exc: BaseException) -> tuple[str, str]:
    try:
        if isinstance(exc, StopIteration):
            value = exc.value
            if value is None:
                return "returned", "None"
            if type(value) in _SHOWN_RESULTS:
                return "returned", _short.repr(value)
            if type(value) in (list, tuple, dict, set):
                return "returned", f"<{type(value).__name__} of {len(value)}>"
            return "returned", f"<{type(value).__qualname__} object>"
        message = str(exc) if not isinstance(type(exc).__str__, types.FunctionType) else ""
        if isinstance(exc, asyncio.CancelledError):
            return "cancelled", message
        return "raised", f"{type(exc).__name__}: {message}"[:200]
    except Exception:  # a result or exception whose repr/str fails: name its type only
        return ("raised" if not isinstance(exc, StopIteration) else "returned"), type(exc).__name__


class TaskCoroutine(collections.abc.Coroutine):
    """Wraps a task's coroutine: every send/throw the Task makes is one recorded step.

    It defines no ``__next__``: on 3.12+ the C Task would drive it with ``PyIter_Send`` and bypass
    ``send``). Frame and code attributes pass through, so ``task.get_stack()``,
    ``repr(task)`` and ``inspect.getcoroutinestate()`` keep working.
    """

    __slots__ = ("_coro", "task_id", "_state", "sent_name", "seek_entry", "suspended_at",
                 "created", "__weakref__")  # fmt: skip

    def __init__(self, coro, task_id: int, state: LoopState | None) -> None:
        self._coro = coro
        self.task_id = task_id
        self._state = state  # None only until the task knows its loop (see tasks.py)
        self.sent_name = None
        # A task whose own coroutine is a library's looks for the user's coroutine inside it
        # at its suspends, until found (the ``entry`` event).
        self.seek_entry = False
        self.suspended_at = NONE  # when its last step ended: a thread's job for it began then
        self.created = False  # True once Task.__init__ returned; None if it failed

    def send(self, value, _throw: tuple | None = None):
        # The hottest code in loopviz: runs for every task step. Locals over attributes, no
        # bound methods or argument packing, the rare cases behind one test each, and nothing
        # allocated but the two event tuples.
        state = self._state
        if state.step_start:
            return self._nested_step(state, value, _throw)
        recorder = state.recorder
        events = recorder.events
        task_id = self.task_id
        t0 = recorder.t0
        start = _clock() - t0
        # step_start is written last and cleared first, and the watchdog reads it before and
        # after step_task (a seqlock on the start time): it never pairs one step's task with
        # another step's start.
        state.step_task = task_id
        state.step_start = start
        events.extend((wire.RESUME, start, task_id))
        try:
            yielded = self._coro.send(value) if _throw is None else self._coro.throw(*_throw)
        except BaseException as exc:
            end = _clock() - t0
            state.step_start = 0
            if state.callback_start:  # callbacks after this step are timed from its end
                state.callback_start = end
            if end - start >= recorder.block_threshold_ns and state.long_step(start, end):
                self._record_block(state, start, end)
            outcome, detail = _outcome_of(exc)
            events.extend((wire.DONE, end, task_id, outcome, detail))
            if state.timeouts:
                state.timeouts.pop(task_id, None)
            if self.sent_name is not None:
                self._check_rename()
            raise
        end = _clock() - t0
        state.step_start = 0
        if state.callback_start:
            state.callback_start = end
        if end - start >= recorder.block_threshold_ns and state.long_step(start, end):
            self._record_block(state, start, end)
        if yielded is None and not state.timeouts:  # a bare yield: asyncio.sleep(0)
            events.extend((wire.YIELD, end, task_id))
            return yielded
        self.suspended_at = end
        try:
            wait = YIELD if yielded is None else state.waits.describe(yielded, self._coro)
            deadline = NONE
            if state.timeouts:
                timeout = state.timeouts.get(task_id)
                if timeout is not None:
                    deadline = state.timeout_deadline(timeout)
            # (``entry`` is from this walk only when there was one: a bare yield has none)
            if self.seek_entry and yielded is not None and state.waits.entry is not None:
                self._record_entry(state.waits.entry)
        except Exception:  # never the program's failure: only this detail goes unrecorded
            report_recording_failure("what a task waits on")
            wait, deadline = UNKNOWN_WAIT, NONE
        # one extend per event: the writer may take the buffer between two calls
        events.extend((wire.SUSPEND, end, task_id, *wait, deadline))
        return yielded

    def _record_entry(self, code) -> None:
        """The program's own coroutine found inside a task a library made (a web handler)."""
        self.seek_entry = False
        where = f"{sources.display_path(code.co_filename)}:{code.co_firstlineno}"
        self._state.recorder.emit(wire.ENTRY, self.task_id, code.co_qualname, where)

    def throw(self, *exc_info):
        return self.send(None, exc_info)

    def _nested_step(self, state: LoopState, value, throw: tuple | None):
        """An eager task's first step runs inside the step of the task that made it (3.12+):
        record it as its own step, then give the outer step back to the watchdog."""
        outer_task, outer_start = state.step_task, state.step_start
        state.step_start = 0
        began = _clock()
        try:
            return self.send(value, throw)
        finally:
            state.step_task = outer_task
            state.step_start = outer_start
            # the outer step did not hold the loop for this long itself (see long_step)
            if state.nested_in != outer_start:
                state.nested_in, state.nested_ns = outer_start, 0
            state.nested_ns += _clock() - began

    def _record_block(self, state: LoopState, start: int, end: int) -> None:
        sample = state.recorder.sampled(state.block_sample, start, end)
        if sample[3] and not sample[0]:
            # The watchdog never ran during the block: at least say whose step it was.
            code = self._coro.cr_code if hasattr(self._coro, "cr_code") else None
            if code is not None:
                where = f"{sources.display_path(code.co_filename)}:{code.co_firstlineno}"
                sample = (where, "", f"{where} in {code.co_name}", True)
        state.recorder.events.extend((wire.BLOCK, end, self.task_id, start, end, *sample))

    def _check_rename(self) -> None:
        sent = self.sent_name
        task = asyncio.current_task()
        if task is not None and task.get_coro() is self and task.get_name() != sent:
            self.sent_name = task.get_name()
            self._state.recorder.emit(wire.RENAME, self.task_id, self.sent_name)

    def close(self):
        return self._coro.close()

    def __await__(self):
        return self._coro.__await__()

    def __getattr__(self, name: str):
        # cr_frame, cr_await, cr_code, cr_running, __name__, __qualname__... of the real coroutine
        return getattr(self._coro, name)

    def __repr__(self) -> str:
        return repr(self._coro)


_SEND_CODE = TaskCoroutine.send.__code__
_HANDLE_RUN_CODE = asyncio.events.Handle._run.__code__


def qualname_of(coro) -> str:
    name = getattr(coro, "__qualname__", None)
    if name:
        return name
    agen = _closed_generator(coro)
    if agen is not None:
        return f"{agen.__qualname__} (closing)"
    return type(coro).__qualname__


def _closed_generator(coro):
    """The async generator a task closes: asyncio finalizes an async generator left unfinished
    by running ``agen.aclose()`` (an ``async_generator_athrow``) as a task of its own."""
    if type(coro).__name__ != "async_generator_athrow":
        return None
    return next((r for r in gc.get_referents(coro) if type(r) is types.AsyncGeneratorType), None)


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep


def is_asyncio_internal(coro) -> bool:
    """asyncio's own housekeeping coroutines (accepting connections, shutting down), and
    uvloop's (compiled from ``uvloop/loop.pyx``)."""
    code = getattr(coro, "cr_code", None)
    if code is None:
        return _closed_generator(coro) is not None  # asyncio's finalizer closing a generator
    return code.co_filename.startswith(_ASYNCIO_DIR) or code.co_filename.startswith("uvloop/")


class LoopInstaller:
    """Finds every event loop the scenario makes and instruments it once."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._running_here: dict[int, LoopState] = {}  # thread id -> the loop it runs now

    def patch_asyncio(self) -> None:
        """Hook the two things every loop and every task goes through, whoever made them: a loop
        starting to run on a thread (``events._set_running_loop``, which stdlib loops and uvloop
        both call), and the construction of an ``asyncio.Task`` (see ``tasks.py``)."""
        installer = self
        original_set_running_loop = asyncio.events._set_running_loop

        @functools.wraps(original_set_running_loop)
        def _set_running_loop(loop):
            original_set_running_loop(loop)
            try:
                installer.loop_started(loop)
            except Exception:
                report_internal_error()

        asyncio.events._set_running_loop = _set_running_loop
        asyncio._set_running_loop = _set_running_loop
        tasks.install_task_class(self)
        self._patch_timeouts()

    def loop_started(self, loop) -> None:
        """A loop starts (or, with None, stops) running on this thread: the watchdog samples
        the thread that runs a loop, which need not be the one that made it."""
        thread_id = threading.get_ident()
        if loop is None:
            state = self._running_here.pop(thread_id, None)
            if state is not None:
                state.callback_start = 0  # not running: nothing can block it
            return
        state = self.state_of(loop)
        state.thread_id = thread_id
        self._running_here[thread_id] = state

    def state_of(self, loop) -> LoopState:
        """The loop's recording state, instrumenting the loop the first time it is seen."""
        state = self._states.get(loop)
        return state if state is not None else self.install(loop)

    def _patch_timeouts(self) -> None:
        """Remember each task's active ``asyncio.timeout`` deadline (``wait_for`` uses it on
        3.12+), so its waits can say when they will be cut short."""
        import asyncio.timeouts as timeouts

        original_reschedule = timeouts.Timeout.reschedule
        states = self.recorder.loops

        @functools.wraps(original_reschedule)
        def reschedule(timeout, when):
            original_reschedule(timeout, when)
            task = getattr(timeout, "_task", None)
            for state in states:
                if task is not None and state.loop_ref() is task.get_loop():
                    state.timeouts[task_id_of(task)] = timeout

        timeouts.Timeout.reschedule = reschedule

    def install(self, loop: asyncio.AbstractEventLoop) -> LoopState:
        state = self._states.get(loop)
        if state is not None:
            return state
        recorder = self.recorder
        state = self._states[loop] = LoopState(recorder, loop)
        unrecorded = []
        if not self._try_patch(loop, "run_in_executor", self._make_run_in_executor(loop, state)):
            unrecorded.append("worker threads")
        if not self._try_patch(loop, "call_soon", self._make_call_soon(loop, state)):
            unrecorded.append("wake-ups other than sleeps")
        if not self._try_patch(
            loop, "call_soon_threadsafe", threads.make_call_soon_threadsafe(loop, state)
        ):
            unrecorded.append("results handed back by other threads")
        self._try_patch(loop, "call_exception_handler", self._make_exception_handler(loop))
        if not self._patch_select(loop, state):
            unrecorded.append("idle time and blocking callbacks")
        recorder.loops.append(state)
        state.loop_id = len(recorder.loops)
        package = type(loop).__module__.split(".")[0]
        impl = package if package in ("asyncio", "uvloop") else f"{package}.{type(loop).__name__}"
        thread = threading.current_thread().name
        recorder.emit(wire.LOOP, impl, ", ".join(unrecorded), state.loop_id, thread)
        return state

    @staticmethod
    def _try_patch(obj, name: str, value) -> bool:
        try:
            setattr(obj, name, value)
        except (AttributeError, TypeError):
            return False
        return True

    def _make_run_in_executor(self, loop, state: LoopState):
        recorder = self.recorder
        original = loop.run_in_executor

        def run_in_executor(executor, func, *args):
            job = recorder.next_job_id()
            current = asyncio.current_task(loop)
            task = task_id_of(current) if current is not None else NONE
            name = describe_callable(func)
            if isinstance(executor, concurrent.futures.ProcessPoolExecutor):
                worker = f"process job {job}"  # processes are not visible: a lane per job
                recorder.emit(wire.THREAD_START, worker, job, task, name)
                fut = original(executor, func, *args)
                fut.add_done_callback(
                    lambda _f: recorder.emit(wire.THREAD_END, worker, job, task, name)
                )
            else:

                def recorded_job():
                    thread = threading.current_thread().name
                    recorder.emit(wire.THREAD_START, thread, job, task, name)
                    try:
                        return func(*args)
                    finally:
                        recorder.emit(wire.THREAD_END, thread, job, task, name)

                fut = original(executor, recorded_job)
            state.jobs.track(fut, job, name)
            return fut

        return run_in_executor

    def _make_call_soon(self, loop, state: LoopState):
        """Every task wake-up passes through call_soon (a future's done callback is the task's
        ``task_wakeup``), so this is the moment a waiting task becomes ready. A wake-up from
        another thread (a future set there) is that thread handing a result back."""
        original = loop.call_soon
        events = self.recorder.events
        t0 = self.recorder.t0
        get_ident = threading.get_ident
        handed_back = state.handed_back

        def call_soon(callback, *args, context=None):
            if type(callback) in _WAKEUP_TYPES and callback.__name__ in threads.WAKEUP_NAMES:
                task = callback.__self__
                if get_ident() != state.thread_id:
                    threads.record_handoff(state, task, "set a future's result")
                elif handed_back and args:
                    threads.took_result(state, task, args[0])
                events.extend((wire.READY, _clock() - t0, task_id_of(task), "woken"))
            return original(callback, *args, context=context)

        return call_soon

    def _make_exception_handler(self, loop):
        original = loop.call_exception_handler
        recorder = self.recorder

        def call_exception_handler(context):
            task = context.get("future") or context.get("task")
            if isinstance(task, asyncio.Task) and "never retrieved" in context.get("message", ""):
                exc = context.get("exception")
                detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
                recorder.emit(wire.UNRETRIEVED, task_id_of(task), detail)
            return original(context)

        return call_exception_handler

    def _patch_select(self, loop, state: LoopState) -> bool:
        selector = getattr(loop, "_selector", None)
        if selector is None or not hasattr(selector, "select"):
            return False
        recorder = self.recorder
        original = selector.select
        events = recorder.events
        t0 = recorder.t0

        def select(timeout=None):
            start = _clock() - t0
            state.end_callbacks(start)
            if len(events) > MAX_BUFFERED:  # the parent is behind: wait for it, as idle time
                recorder.wait_for_writer()
                events.extend((wire.IDLE, _clock() - t0, start))
                start = _clock() - t0
            if timeout is not None and timeout <= 0:
                ready = original(timeout)
            else:
                state.in_select = True
                try:
                    ready = original(timeout)
                finally:
                    state.in_select = False
                events.extend((wire.IDLE, _clock() - t0, start))
            state.callback_start = _clock() - t0
            return ready

        return self._try_patch(selector, "select", select)


class RecordedStream:
    """Stands in for sys.stdout/sys.stderr: each line becomes an ``output`` event, stamped when
    it started, so the timeline places the scenario's prints exactly between task steps.

    Threads print at once (a worker pool logging), so a lock keeps each write whole: a line is
    sent exactly once, as a plain ``print`` would write it once. It is re-entrant, because a
    signal handler may print while the interrupted code is inside ``write``."""

    def __init__(self, recorder: Recorder, stream_name: str, original) -> None:
        self._recorder = recorder
        self._stream_name = stream_name
        self._original = original
        self._pending = ""
        self._pending_t = 0
        self._lock = threading.RLock()

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
        with self._lock:
            if not self._pending:
                self._pending_t = self._recorder.now()
            self._pending += text
            if "\n" in text:
                complete, _, rest = self._pending.rpartition("\n")
                self._recorder.events.extend(
                    (wire.OUTPUT, self._pending_t, self._stream_name, complete + "\n")
                )
                self._pending = rest
                self._pending_t = self._recorder.now()
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._recorder.events.extend(
                    (wire.OUTPUT, self._pending_t, self._stream_name, self._pending)
                )
                self._pending = ""

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def __getattr__(self, name):
        # fileno, buffer, encoding, errors...: the real stream's, so byte-level writes still work
        return getattr(self._original, name)
