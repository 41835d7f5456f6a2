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
from loopviz.recorder import sources
from loopviz.recorder.waits import YIELD, WaitNamer
from loopviz.wire import NONE

_clock = time.perf_counter_ns
# Items (not events: an event is 3 to 10 items) the event buffer may hold before the loop waits
# for the writer, about 250,000 events: a quarter of a second of the fastest flood.
MAX_BUFFERED = 1_000_000
# A task's wake-up is ``task_wakeup`` (C Task, a builtin method) or ``__wakeup`` (Python Task, a
# bound method); its steps are scheduled as TaskStepMethWrapper objects, rejected by type alone.
_WAKEUP_NAMES = frozenset({"task_wakeup", "__wakeup", "_Task__wakeup"})
_WAKEUP_TYPES = frozenset({types.BuiltinMethodType, types.MethodType})
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
# 3.13.0 renames unnamed tasks "None" whenever a task factory is installed (gh-124269).
_RESTORE_NONE_NAMES = sys.version_info[:3] == (3, 13, 0)


def report_internal_error() -> None:
    """Write loopviz's own traceback to the real stderr (fd 2), which the parent passes on; the
    scenario's sys.stderr feeds the event stream and would swallow it."""
    text = "loopviz: internal error in the recorder\n" + traceback.format_exc()
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
        # Flat (t, task id, parent, where, task, proxy) groups whose names are read at drain time,
        # because asyncio names a task only after the task factory returns.
        self.pending_creates: list = []
        self.loops: list[LoopState] = []
        self.task_ids = itertools.count(1)  # next() is atomic: any thread may make tasks
        self._job_ids = itertools.count(1)
        self._stop = threading.Event()
        self._drained = threading.Event()  # set by the writer after each frame
        self._write_lock = threading.Lock()
        self._broken = False
        self._writer = threading.Thread(target=self._write_loop, name="loopviz-writer", daemon=True)
        self._watchdog = threading.Thread(
            target=self._watch_loop, name="loopviz-watchdog", daemon=True
        )

    def now(self) -> int:
        return _clock() - self.t0

    def start(self) -> None:
        self.emit(wire.HELLO, self.t0, sys.version.split()[0], os.getpid())
        self._writer.start()
        self._watchdog.start()

    def emit(self, kind: int, *fields) -> None:
        """Append one event stamped now (for rare events; hot paths extend ``events`` directly)."""
        self.events.extend((kind, _clock() - self.t0, *fields))

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
        for i in range(0, n, 6):
            t, task_id, parent, where, task, proxy = groups[i : i + 6]
            name = task.get_name()
            proxy.sent_name = name
            coro = proxy._coro
            flat.extend((wire.CREATE, t, task_id, name, _qualname(coro), parent, where,
                         _is_asyncio_internal(coro), proxy._state.loop_id))  # fmt: skip
        return flat

    # -- watchdog -------------------------------------------------------------------------

    def _watch_loop(self) -> None:
        interval = min(0.02, self.block_threshold_ns / 5e9)
        while not self._stop.wait(interval):
            for state in self.loops:
                state.check_block(self)

    # -- shutdown -------------------------------------------------------------------------

    def finish(self, exit_code: int, error: str | None) -> None:
        """Record the end, stop the helper threads and push the last frame out."""
        for stream in (sys.stdout, sys.stderr):
            if isinstance(stream, RecordedStream):
                stream.flush()
        self.emit(wire.END, exit_code, error)
        self._stop.set()
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
        # (step start, where, code, stack) sampled by the watchdog for the step now running
        self.block_sample: tuple[int, str, str, str] | None = None
        # Time the loop left select() or finished a step: a callback has run since then.
        # 0 while the loop is not running (or its select() cannot be seen, as on uvloop).
        self.callback_start = 0
        self.in_select = False
        self.callback_sample: tuple[int, str, str, str] | None = None
        self.inner_factory = None
        self.jobs = JobTable()
        # task id -> its innermost asyncio.timeout (a Timeout object, read at each suspend)
        self.timeouts: dict[int, object] = {}
        offset = loop.time() * 1e9 - (_clock())
        t0 = recorder.t0
        self.loop_time_to_ns = lambda when: int(when * 1e9 - offset) - t0
        self.waits = WaitNamer(self.loop_time_to_ns, task_id_of, self.jobs.get_by_future)

    def timeout_deadline(self, timeout) -> int:
        when = getattr(timeout, "_when", None)
        if when is None or getattr(getattr(timeout, "_state", None), "value", "") != "active":
            return NONE
        return self.loop_time_to_ns(when)

    def check_block(self, recorder: Recorder) -> None:
        """Called by the watchdog: sample the culprit of a step or callback past the threshold."""
        start = self.step_start
        task = self.step_task
        if self.step_start != start:
            return  # a step began or ended while we read: look again next time
        if start:
            if self.block_sample and self.block_sample[0] == start:
                return
            if recorder.now() - start < recorder.block_threshold_ns:
                return
            sample = self._sample()
            if self.step_start != start:
                return  # the step ended while we looked
            self.block_sample = (start, *sample)
            recorder.emit(wire.BLOCK_BEGIN, task, start, *sample)
            return
        callback_start = self.callback_start
        if not callback_start or self.in_select:
            return
        if self.callback_sample and self.callback_sample[0] == callback_start:
            return
        if recorder.now() - callback_start < recorder.block_threshold_ns:
            return
        sample = self._sample()
        if self.callback_start != callback_start or self.step_start or self.in_select:
            return
        self.callback_sample = (callback_start, *sample)
        recorder.emit(wire.BLOCK_BEGIN, NONE, callback_start, *sample)

    def _sample(self) -> tuple[str, str, str]:
        """(where, code, stack) of the innermost user frame the loop thread is running now."""
        frame = sys._current_frames().get(self.thread_id)
        culprit = sources.innermost_user_frame(frame)
        where = sources.where(culprit) if culprit else ""
        code = sources.source_line(culprit) if culprit else ""
        stack = "\n".join(sources.user_stack(frame))
        return where, code, stack

    def end_callbacks(self, now: int) -> None:
        """The loop is back in select(): report the callbacks since ``callback_start`` if they held
        the loop past the threshold (a blocking call_soon/call_later/protocol callback)."""
        start = self.callback_start
        recorder = self.recorder
        if start and not self.step_start and now - start >= recorder.block_threshold_ns:
            sample = self.callback_sample
            where, code, stack = sample[1:] if sample and sample[0] == start else ("", "", "")
            recorder.events.extend((wire.BLOCK, now, NONE, start, now, where, code, stack))


class JobTable(dict):
    """Executor futures awaited by tasks -> (job id, function name), forgotten when done."""

    def get_by_future(self, fut: object) -> tuple[int, str] | None:
        return self.get(id(fut))

    def track(self, fut: asyncio.Future, job: int, func: str) -> None:
        key = id(fut)
        self[key] = (job, func)
        fut.add_done_callback(lambda _f: self.pop(key, None))


# Tasks whose id cannot be read from their coroutine: a scenario's own factory wrapped our proxy,
# or an eager task finished inside the factory. On 3.12.0-3.12.1 every task is kept here, because
# get_coro() of a finished eager task crashes those versions.
_task_ids: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GET_CORO_UNSAFE_WHEN_DONE = sys.version_info[:3] in ((3, 12, 0), (3, 12, 1))
_proxies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # only kept on 3.13.0


def task_id_of(task: object) -> int:
    """The id the factory gave ``task``: read from its coroutine (our proxy), so the hot paths
    (a wake-up, a parent lookup) need no weak map."""
    if _GET_CORO_UNSAFE_WHEN_DONE and task.done():
        return _task_ids.get(task, NONE)
    get_coro = getattr(task, "get_coro", None)
    coro = get_coro() if get_coro is not None else None
    if type(coro) is TaskCoroutine:
        return coro.task_id
    return _task_ids.get(task, NONE)


def _remember_task_id(task: object, proxy: TaskCoroutine) -> None:
    if _GET_CORO_UNSAFE_WHEN_DONE or task.done() or task.get_coro() is not proxy:
        _task_ids[task] = proxy.task_id


def _outcome_of(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, StopIteration):
        value = exc.value
        return "returned", "None" if value is None else _short.repr(value)
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled", str(exc)
    return "raised", f"{type(exc).__name__}: {exc}"[:200]


class TaskCoroutine(collections.abc.Coroutine):
    """Wraps a task's coroutine: every send/throw the Task makes is one recorded step.

    It defines no ``__next__``: on 3.12+ the C Task would drive it with ``PyIter_Send`` and bypass
    ``send`` (DESIGN.md). Frame and code attributes pass through, so ``task.get_stack()``,
    ``repr(task)`` and ``inspect.getcoroutinestate()`` keep working.
    """

    __slots__ = ("_coro", "task_id", "_state", "default_name", "sent_name", "__weakref__")

    def __init__(self, coro, task_id: int, state: LoopState) -> None:
        self._coro = coro
        self.task_id = task_id
        self._state = state
        self.default_name = ""  # asyncio's own name for the task, kept on 3.13.0 only
        self.sent_name = None

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
            if end - start >= recorder.block_threshold_ns:
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
        if end - start >= recorder.block_threshold_ns:
            self._record_block(state, start, end)
        if yielded is None and not state.timeouts:  # a bare yield: asyncio.sleep(0)
            events.extend((wire.YIELD, end, task_id))
            return yielded
        wait = YIELD if yielded is None else state.waits.describe(yielded, self._coro)
        deadline = NONE
        if state.timeouts:
            timeout = state.timeouts.get(task_id)
            if timeout is not None:
                deadline = state.timeout_deadline(timeout)
        # one extend per event: the writer may take the buffer between two calls
        events.extend((wire.SUSPEND, end, task_id, *wait, deadline))
        return yielded

    def throw(self, *exc_info):
        return self.send(None, exc_info)

    def _nested_step(self, state: LoopState, value, throw: tuple | None):
        """An eager task's first step runs inside the step of the task that made it (3.12+):
        record it as its own step, then give the outer step back to the watchdog."""
        outer_task, outer_start = state.step_task, state.step_start
        state.step_start = 0
        try:
            return self.send(value, throw)
        finally:
            state.step_task = outer_task
            state.step_start = outer_start

    def _record_block(self, state: LoopState, start: int, end: int) -> None:
        sample = state.block_sample
        where, code, stack = sample[1:] if sample and sample[0] == start else ("", "", "")
        state.recorder.events.extend(
            (wire.BLOCK, end, self.task_id, start, end, where, code, stack)
        )

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


def _qualname(coro) -> str:
    return getattr(coro, "__qualname__", None) or type(coro).__qualname__


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep


def _is_asyncio_internal(coro) -> bool:
    """asyncio's own housekeeping coroutines (accepting connections, shutting down)."""
    code = getattr(coro, "cr_code", None)
    return code is not None and code.co_filename.startswith(_ASYNCIO_DIR)


_spawn_sites: dict[tuple, str] = {}  # (code, line) -> "file:line": the same few lines make tasks


def _spawn_site() -> str:
    frame = sources.innermost_user_frame(sys._getframe(2))
    if frame is None:
        return ""
    key = (frame.f_code, frame.f_lineno)
    site = _spawn_sites.get(key)
    if site is None:
        site = _spawn_sites[key] = sources.where(frame)
    return site


def _describe_callable(func) -> str:
    while isinstance(func, functools.partial):
        # asyncio.to_thread submits partial(context.run, func, *args)
        inner = func.args[0] if func.func.__qualname__ == "Context.run" and func.args else func.func
        func = inner
    return f"{getattr(func, '__qualname__', None) or repr(func)}()"


class LoopInstaller:
    """Finds every event loop the scenario makes and instruments it once."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._installed: weakref.WeakSet = weakref.WeakSet()

    def patch_asyncio(self) -> None:
        installer = self
        original_lazy_init = asyncio.runners.Runner._lazy_init

        @functools.wraps(original_lazy_init)
        def _lazy_init(runner):
            original_lazy_init(runner)
            installer.install(runner._loop)

        asyncio.runners.Runner._lazy_init = _lazy_init

        policy_class = asyncio.events.BaseDefaultEventLoopPolicy
        original_new_loop = policy_class.new_event_loop

        @functools.wraps(original_new_loop)
        def new_event_loop(policy):
            loop = original_new_loop(policy)
            installer.install(loop)
            return loop

        policy_class.new_event_loop = new_event_loop
        self._patch_timeouts()

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

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop in self._installed:
            return
        self._installed.add(loop)
        recorder = self.recorder
        state = LoopState(recorder, loop)
        state.inner_factory = loop.get_task_factory()
        unrecorded = []
        loop.set_task_factory(self._make_factory(state))
        if not self._try_patch(loop, "set_task_factory", self._make_set_factory(state)):
            unrecorded.append("task factories set later by the scenario")
        else:
            self._try_patch(loop, "get_task_factory", lambda: state.inner_factory)
        if not self._try_patch(loop, "run_in_executor", self._make_run_in_executor(loop, state)):
            unrecorded.append("worker threads")
        if _RESTORE_NONE_NAMES:
            self._try_patch(loop, "create_task", self._make_create_task_keeping_names(loop))
        if not self._try_patch(loop, "call_soon", self._make_call_soon(loop)):
            unrecorded.append("wake-ups other than sleeps")
        self._try_patch(loop, "call_exception_handler", self._make_exception_handler(loop))
        if not self._patch_select(loop, state):
            unrecorded.append("idle time and blocking callbacks")
        else:
            self._try_patch(loop, "run_forever", self._make_run_forever(loop, state))
        recorder.loops.append(state)
        state.loop_id = len(recorder.loops)
        package = type(loop).__module__.split(".")[0]
        impl = package if package in ("asyncio", "uvloop") else f"{package}.{type(loop).__name__}"
        thread = threading.current_thread().name
        recorder.emit(wire.LOOP, impl, ", ".join(unrecorded), state.loop_id, thread)

    @staticmethod
    def _try_patch(obj, name: str, value) -> bool:
        try:
            setattr(obj, name, value)
        except (AttributeError, TypeError):
            return False
        return True

    def _make_factory(self, state: LoopState):
        recorder = self.recorder
        t0 = recorder.t0
        task_ids = recorder.task_ids
        get_ident, current_task, Task = threading.get_ident, asyncio.current_task, asyncio.Task
        # Only a task that is not ours alone (a scenario's factory made it) or that may have run
        # eagerly (3.12+) can lack our proxy as its coroutine: the rest skip the check.
        eager_possible = sys.version_info >= (3, 12)

        def loopviz_task_factory(loop, coro, **kwargs):
            t = _clock() - t0
            task_id = next(task_ids)
            state.thread_id = get_ident()
            parent_task = current_task(loop)
            parent = task_id_of(parent_task) if parent_task is not None else NONE
            proxy = TaskCoroutine(coro, task_id, state)
            inner = state.inner_factory
            remember_ids = inner is not None or eager_possible
            if inner is not None:
                task = inner(loop, proxy, **kwargs)
            else:
                task = Task(proxy, loop=loop, **kwargs)
            if remember_ids:
                _remember_task_id(task, proxy)
            if _RESTORE_NONE_NAMES:
                proxy.default_name = task.get_name()  # asyncio's own Task-N, before the bug
                _proxies[task] = proxy
            recorder.pending_creates.extend((t, task_id, parent, _spawn_site(), task, proxy))
            return task

        return loopviz_task_factory

    @staticmethod
    def _make_set_factory(state: LoopState):
        def set_task_factory(factory):
            if factory is not None and not callable(factory):
                raise TypeError("task factory must be a callable or None")
            state.inner_factory = factory

        return set_task_factory

    def _make_run_in_executor(self, loop, state: LoopState):
        recorder = self.recorder
        original = loop.run_in_executor

        def run_in_executor(executor, func, *args):
            job = recorder.next_job_id()
            current = asyncio.current_task(loop)
            task = task_id_of(current) if current is not None else NONE
            name = _describe_callable(func)
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

    @staticmethod
    def _make_create_task_keeping_names(loop):
        """On 3.13.0 ``create_task`` renames an unnamed task "None" whenever a factory is set;
        give it back the name it had, so the scenario sees what it would without loopviz."""
        original = loop.create_task

        def create_task(coro, *, name=None, **kwargs):
            task = original(coro, name=name, **kwargs)
            proxy = _proxies.get(task)
            if name is None and proxy is not None and task.get_name() == "None":
                task.set_name(proxy.default_name)
            return task

        return create_task

    def _make_call_soon(self, loop):
        """Every task wake-up passes through call_soon (a future's done callback is the task's
        ``task_wakeup``), so this is the moment a waiting task becomes ready."""
        original = loop.call_soon
        events = self.recorder.events
        t0 = self.recorder.t0

        def call_soon(callback, *args, context=None):
            if type(callback) in _WAKEUP_TYPES and callback.__name__ in _WAKEUP_NAMES:
                events.extend((wire.READY, _clock() - t0, task_id_of(callback.__self__), "woken"))
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

    @staticmethod
    def _make_run_forever(loop, state: LoopState):
        original = loop.run_forever

        def run_forever():
            try:
                return original()
            finally:
                state.callback_start = 0  # not running: nothing can block it

        return run_forever

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
    it started, so the timeline places the scenario's prints exactly between task steps."""

    def __init__(self, recorder: Recorder, stream_name: str, original) -> None:
        self._recorder = recorder
        self._stream_name = stream_name
        self._original = original
        self._pending = ""
        self._pending_t = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if not text:
            return 0
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
