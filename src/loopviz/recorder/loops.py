"""The loop hooks: each event loop the program makes, found and instrumented once.

A loop is found when it starts running on a thread (``events._set_running_loop``) or makes a task.
Its ``call_soon`` sees every task's wake-up, ``run_in_executor`` every worker thread's job,
``call_soon_threadsafe`` results handed back by other threads, and its selector's ``select`` the
idle time between iterations (and so callbacks that block). ``LoopState`` is one loop's step
bookkeeping, shared by the task proxies and the watchdog.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import threading
import time
import types
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from loopviz import wire
from loopviz.recorder import core, proxy, tasks, threads
from loopviz.recorder.failures import report_internal_error
from loopviz.recorder.libraries import describe_callable
from loopviz.recorder.proxy import task_id_of
from loopviz.recorder.waits import WaitNamer
from loopviz.recorder.writer import Recorder
from loopviz.wire import NONE

if TYPE_CHECKING:
    from loopviz.recorder._stackwatch import Slot

_clock = time.perf_counter_ns
# A task's wake-up is ``task_wakeup`` (C Task, a builtin method) or ``__wakeup`` (Python Task, a
# bound method); its steps are scheduled as TaskStepMethWrapper objects, rejected by type alone.
_WAKEUP_TYPES = frozenset({types.BuiltinMethodType, types.MethodType})
# Deadlines further than this (about 292 years) from now are "never": they do not fit an int64.
_FAR_FUTURE_NS = 2**63 - 1
# A frame sent by the loop thread that took longer than this waited for the parent (the pipe was
# full): that time is shown as idle, not as the callbacks' own.
FLUSH_WAIT_SHOWN_NS = 1_000_000


class LoopState(core.LoopSlots):
    """Per-loop step bookkeeping shared by the task proxies and the watchdog (what a step
    reads and writes is in ``core.LoopSlots``: C int64s with the native core)."""

    def __init__(self, recorder: Recorder, loop: asyncio.AbstractEventLoop) -> None:
        self.recorder = recorder
        self.events = recorder.events
        self.t0 = recorder.t0
        self.block_threshold_ns = recorder.block_threshold_ns
        self.loop_ref = weakref.ref(loop)
        self.thread_id = threading.get_ident()
        self.loop_id = 0  # 1, 2...: in the order the scenario made its loops
        self.step_start = 0  # 0 = no step running
        # The native watchdog's slot for this loop: each step writes its start there (the C
        # proxy through the buffer's pointer, the Python one in ``step_clock[0]``)
        self.native_slot: Slot | None = recorder.watchdog.native_slot()
        if core.native is None:
            self.step_clock = [0, 0]  # where the watchdog is not built: written, never read
        if self.native_slot is not None:
            self.attach_step_clock(self.native_slot)
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
        self.jobs = JobTable()
        # futures other threads handed back a result for -> (thread, what): see threads.py
        self.handed_back: weakref.WeakKeyDictionary[object, tuple[str, str]] = (
            weakref.WeakKeyDictionary()
        )
        # the dict inside it (not in typeshed): while it is empty, no wake-up needs a look
        self.handed_back_refs = getattr(self.handed_back, "data")  # noqa: B009
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
        self.wait_handlers = self.waits.by_code
        self.owner_waits = self.waits.owner_waits
        self.sleep_locals = self.waits.sleep_locals
        self.loop_offset = offset  # loop_time_to_ns's, for the native core

    def long_step(self, start: int, end: int) -> bool:
        """Whether the step from ``start`` to ``end`` held the loop past the threshold by itself,
        not counting the eager first steps of tasks it made (3.12+), recorded as their own."""
        nested = self.nested_ns if self.nested_in == start else 0
        return end - start - nested >= self.recorder.block_threshold_ns

    def timeout_deadline(self, timeout: object) -> int:
        when = getattr(timeout, "_when", None)
        if when is None or getattr(getattr(timeout, "_state", None), "value", "") != "active":
            return NONE
        return self.loop_time_to_ns(when)

    def end_callbacks(self, now: int) -> None:
        """The loop is back in select(): report the callbacks since ``callback_start`` if they held
        the loop past the threshold (a blocking call_soon/call_later/protocol callback)."""
        start = self.callback_start
        recorder = self.recorder
        if start and not self.step_start and now - start >= recorder.block_threshold_ns:
            sample = recorder.watchdog.sampled(self.callback_sample, start, now)
            recorder.events.extend((wire.BLOCK, now, NONE, start, now, *sample))


class JobTable(dict[int, tuple[int, str]]):
    """Executor futures awaited by tasks -> (job id, function name), forgotten when done."""

    def get_by_future(self, fut: object) -> tuple[int, str] | None:
        return self.get(id(fut))

    def track(self, fut: asyncio.Future[Any], job: int, func: str) -> None:
        key = id(fut)
        self[key] = (job, func)
        fut.add_done_callback(lambda _f: self.pop(key, None))


def record_wakeup(state: LoopState, callback: Any, args: tuple[Any, ...]) -> None:
    """``callback``, scheduled by call_soon, is a task's wake-up (its ``task_wakeup``, or a
    Python Task's ``__wakeup``): that task is ready. A wake-up from another thread is that
    thread handing the task a result. (The native hook records the common case itself, and
    hands the rest here.)"""
    if callback.__name__ not in threads.WAKEUP_NAMES:
        return
    task = callback.__self__
    if threading.get_ident() != state.thread_id:
        threads.record_handoff(state, task, "set a future's result")
    elif state.handed_back and args:
        threads.took_result(state, task, args[0])
    state.events.extend((wire.READY, _clock() - state.t0, task_id_of(task), "woken"))


if core.native is not None:  # what the native core leaves to Python
    core.native.configure(
        record_suspend=proxy.record_suspend,
        record_return=proxy.record_return,
        record_raise=proxy.record_raise,
        record_block=proxy.record_block,
        wakeup=record_wakeup,
        encode=msgspec.msgpack.encode,
        asyncio=asyncio,
        asyncio_dir=os.path.dirname(asyncio.__file__) + os.sep,
    )


class LoopInstaller:
    """Finds every event loop the scenario makes and instruments it once."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopState] = (
            weakref.WeakKeyDictionary()
        )
        self._running_here: dict[int, LoopState] = {}  # thread id -> the loop it runs now

    def patch_asyncio(self) -> None:
        """Hook the two things every loop and every task goes through, whoever made them: a loop
        starting to run on a thread (``events._set_running_loop``, which stdlib loops and uvloop
        both call), and the construction of an ``asyncio.Task`` (see ``tasks.py``)."""
        installer = self
        original_set_running_loop = asyncio.events._set_running_loop

        @functools.wraps(original_set_running_loop)
        def _set_running_loop(loop: asyncio.AbstractEventLoop | None) -> None:
            original_set_running_loop(loop)
            try:
                installer.loop_started(loop)
            except Exception:
                report_internal_error()

        asyncio.events._set_running_loop = _set_running_loop
        asyncio._set_running_loop = _set_running_loop
        tasks.install_task_class(self)
        self._patch_timeouts()

    def loop_started(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """A loop starts (or, with None, stops) running on this thread: the watchdog samples
        the thread that runs a loop, which need not be the one that made it."""
        thread_id = threading.get_ident()
        if loop is None:
            state = self._running_here.pop(thread_id, None)
            if state is not None:
                state.callback_start = 0  # not running: nothing can block it
                self.recorder.watchdog.unwatch(state)
            return
        state = self.state_of(loop)
        state.thread_id = thread_id
        self.recorder.watchdog.watch(state)
        self._running_here[thread_id] = state

    def state_of(self, loop: asyncio.AbstractEventLoop) -> LoopState:
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
        def reschedule(timeout: timeouts.Timeout, when: float | None) -> None:
            original_reschedule(timeout, when)
            task = getattr(timeout, "_task", None)
            for state in states:
                if task is not None and state.loop_ref() is task.get_loop():
                    state.timeouts[task_id_of(task)] = timeout

        setattr(timeouts.Timeout, "reschedule", reschedule)  # noqa: B010 (for every Timeout)

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
    def _try_patch(obj: object, name: str, value: object) -> bool:
        try:
            setattr(obj, name, value)
        except (AttributeError, TypeError):
            return False
        return True

    def _make_run_in_executor(
        self, loop: asyncio.AbstractEventLoop, state: LoopState
    ) -> Callable[..., asyncio.Future[Any]]:
        recorder = self.recorder
        original = loop.run_in_executor

        def run_in_executor(
            executor: concurrent.futures.Executor | None, func: Callable[..., Any], *args: Any
        ) -> asyncio.Future[Any]:
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

                def recorded_job() -> Any:
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

    def _make_call_soon(
        self, loop: asyncio.AbstractEventLoop, state: LoopState
    ) -> Callable[..., asyncio.Handle]:
        """Every task wake-up passes through call_soon (a future's done callback is the task's
        ``task_wakeup``), so this is the moment a waiting task becomes ready. A wake-up from
        another thread (a future set there) is that thread handing a result back."""
        original = loop.call_soon
        if core.native is not None:
            hook: Callable[..., asyncio.Handle] = core.native.WakeupHook(original, state)
            return hook

        def call_soon(callback: Any, *args: Any, context: Any = None) -> asyncio.Handle:
            if type(callback) in _WAKEUP_TYPES:
                record_wakeup(state, callback, args)
            return original(callback, *args, context=context)

        return call_soon

    def _make_exception_handler(
        self, loop: asyncio.AbstractEventLoop
    ) -> Callable[[dict[str, Any]], None]:
        original = loop.call_exception_handler
        recorder = self.recorder

        def call_exception_handler(context: dict[str, Any]) -> None:
            task = context.get("future") or context.get("task")
            if isinstance(task, asyncio.Task) and "never retrieved" in context.get("message", ""):
                exc = context.get("exception")
                detail = f"{type(exc).__name__}: {exc}" if exc is not None else ""
                recorder.emit(wire.UNRETRIEVED, task_id_of(task), detail)
            return original(context)

        return call_exception_handler

    def _patch_select(self, loop: asyncio.AbstractEventLoop, state: LoopState) -> bool:
        selector = getattr(loop, "_selector", None)
        if selector is None or not hasattr(selector, "select"):
            return False
        recorder = self.recorder
        original = selector.select
        events = recorder.events
        t0 = recorder.t0

        def select(timeout: float | None = None) -> Any:
            start = _clock() - t0
            state.end_callbacks(start)
            state.callback_start = 0  # none run while it waits (the native watchdog reads it)
            if recorder.flush_due(start):
                recorder.drain()  # the loop's own frame, between two iterations
                sent = _clock() - t0
                if sent - start > FLUSH_WAIT_SHOWN_NS:  # the pipe was full: it waited for the
                    events.extend((wire.IDLE, sent, start))  # parent, as idle time
                    start = sent
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
