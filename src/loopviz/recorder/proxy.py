"""The task proxy: every step of every task, recorded where the Task makes it.

Each task's coroutine is wrapped (see ``tasks.py``) in a ``TaskCoroutine``, so each ``send`` or
``throw`` the Task makes is one step: a ``resume`` before it, then a ``suspend`` (with what the
task now waits on), a bare ``yield``, or ``done`` after it, and a ``block`` when it held the loop
past the threshold. This is the hottest code in loopviz.
"""

from __future__ import annotations

import asyncio
import collections.abc
import gc
import os
import reprlib
import time
import types
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

from loopviz import wire
from loopviz.recorder import core, sources
from loopviz.recorder.failures import report_recording_failure
from loopviz.recorder.waits import UNKNOWN_WAIT, YIELD
from loopviz.wire import NONE

if TYPE_CHECKING:
    from loopviz.recorder.loops import LoopState

_clock = time.perf_counter_ns
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60


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


class TaskCoroutine(collections.abc.Coroutine[Any, Any, Any]):
    """Wraps a task's coroutine: every send/throw the Task makes is one recorded step.

    The pure-Python recorder's proxy; the native core's (``_native.TaskCoroutine``) does the
    same in C. It defines no ``__next__``: on 3.12+ the C Task would drive it with
    ``PyIter_Send`` and bypass ``send``). Frame and code attributes pass through, so
    ``task.get_stack()``, ``repr(task)`` and ``inspect.getcoroutinestate()`` keep working.
    """

    __slots__ = ("_coro", "task_id", "_state", "sent_name", "seek_entry", "suspended_at",
                 "created", "__weakref__")  # fmt: skip

    def __init__(self, coro: Any, task_id: int, state: LoopState | None) -> None:
        # a coroutine, or any object asyncio takes for one (a compiled coroutine); None once
        # its Task failed to start, so that the program is warned about it as plainly
        self._coro: Any = coro
        self.task_id = task_id
        # None only until the task knows its loop (see tasks.py), before any step runs
        self._state = cast("LoopState", state)
        self.sent_name: str | None = None
        # A task whose own coroutine is a library's looks for the user's coroutine inside it
        # at its suspends, until found (the ``entry`` event).
        self.seek_entry = False
        self.suspended_at = NONE  # when its last step ended: a thread's job for it began then
        self.created: bool | None = False  # True once Task.__init__ returned; None if it failed

    def send(self, value: Any, _throw: tuple[Any, ...] | None = None) -> Any:
        # The hottest code of the pure-Python recorder: runs for every task step. Locals over
        # attributes, no bound methods or argument packing, the rare cases behind one test
        # each, and nothing allocated but the two event tuples.
        state = self._state
        if state.step_start:
            return self._nested_step(state, value, _throw)
        events = state.events
        task_id = self.task_id
        t0 = state.t0
        start = _clock() - t0
        # step_start is written last and cleared first, and the watchdog reads it before and
        # after step_task (a seqlock on the start time): it never pairs one step's task with
        # another step's start.
        state.step_task = task_id
        state.step_start = start
        state.step_clock[0] = start  # (the native watchdog's copy)
        events.extend((wire.RESUME, start, task_id))
        try:
            yielded = self._coro.send(value) if _throw is None else self._coro.throw(*_throw)
        except BaseException as exc:
            end = _clock() - t0
            state.step_start = 0
            state.step_clock[0] = 0
            if state.callback_start:  # callbacks after this step are timed from its end
                state.callback_start = end
            if end - start >= state.block_threshold_ns:
                record_block(self, state, start, end)
            record_raise(self, state, exc, end)
            raise
        end = _clock() - t0
        state.step_start = 0
        state.step_clock[0] = 0
        if state.callback_start:
            state.callback_start = end
        if end - start >= state.block_threshold_ns:
            record_block(self, state, start, end)
        if yielded is None and not state.timeouts:  # a bare yield: asyncio.sleep(0)
            events.extend((wire.YIELD, end, task_id))
            return yielded
        self.suspended_at = end
        record_suspend(self, state, yielded, end)
        return yielded

    def throw(self, *exc_info: Any) -> Any:
        return self.send(None, exc_info)

    def _nested_step(self, state: LoopState, value: Any, throw: tuple[Any, ...] | None) -> Any:
        """An eager task's first step runs inside the step of the task that made it (3.12+):
        record it as its own step, then give the outer step back to the watchdog."""
        outer_task, outer_start = state.step_task, state.step_start
        state.step_start = state.step_clock[0] = 0
        began = _clock()
        try:
            return self.send(value, throw)
        finally:
            state.step_task = outer_task
            state.step_start = state.step_clock[0] = outer_start
            # the outer step did not hold the loop for this long itself (see long_step)
            if state.nested_in != outer_start:
                state.nested_in, state.nested_ns = outer_start, 0
            state.nested_ns += _clock() - began

    def close(self) -> Any:  # 3.13+: the value the coroutine returned, if any
        return self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        awaited: Generator[Any, None, Any] = self._coro.__await__()
        return awaited

    def __getattr__(self, name: str) -> Any:
        # cr_frame, cr_await, cr_code, cr_running, __name__, __qualname__... of the real coroutine
        return getattr(self._coro, name)

    def __repr__(self) -> str:
        return repr(self._coro)


# What both proxies (this one, and the native core's, which has the same attributes) record of
# a step beyond its resume and a bare yield. Each gets the proxy, its LoopState, and the time
# the step ended.


def record_suspend(proxy: TaskCoroutine, state: LoopState, yielded: object, end: int) -> None:
    """The step suspended: what the task waits on now, and its ``entry`` if it was sought."""
    task_id = proxy.task_id
    try:
        wait = YIELD if yielded is None else state.waits.describe(yielded, proxy._coro)
        deadline = NONE
        if state.timeouts:
            timeout = state.timeouts.get(task_id)
            if timeout is not None:
                deadline = state.timeout_deadline(timeout)
        # (``entry`` is from this walk only when there was one: a bare yield has none)
        if proxy.seek_entry and yielded is not None and state.waits.entry is not None:
            record_entry(proxy, state.waits.entry)
    except Exception:  # never the program's failure: only this detail goes unrecorded
        report_recording_failure("what a task waits on")
        wait, deadline = UNKNOWN_WAIT, NONE
    # one extend per event: the writer may take the buffer between two calls
    state.events.extend((wire.SUSPEND, end, task_id, *wait, deadline))


def record_raise(proxy: TaskCoroutine, state: LoopState, exc: BaseException, end: int) -> None:
    """The step ended the task (``exc`` is the StopIteration of a return): its ``done``."""
    task_id = proxy.task_id
    outcome, detail = _outcome_of(exc)
    state.events.extend((wire.DONE, end, task_id, outcome, detail))
    if state.timeouts:
        state.timeouts.pop(task_id, None)
    if proxy.sent_name is not None:
        _check_rename(proxy, state)


def record_return(proxy: TaskCoroutine, state: LoopState, value: object, end: int) -> None:
    """The task returned ``value`` (the native proxy gets it without a StopIteration)."""
    record_raise(proxy, state, StopIteration(value), end)


def record_block(proxy: TaskCoroutine, state: LoopState, start: int, end: int) -> None:
    """The step from ``start`` to ``end`` ran past the block threshold: a ``block`` if it held
    the loop that long by itself (see ``LoopState.long_step``)."""
    if not state.long_step(start, end):
        return
    sample = state.recorder.watchdog.step_sampled(state, start, end, proxy._coro)
    if sample[3] and not sample[0]:
        # No watchdog read the block's line: at least say whose step it was.
        code = getattr(proxy._coro, "cr_code", None)
        if code is not None:
            where = f"{sources.display_path(code.co_filename)}:{code.co_firstlineno}"
            sample = (where, "", f"{where} in {code.co_name}", True)
    state.events.extend((wire.BLOCK, end, proxy.task_id, start, end, *sample))


def record_entry(proxy: TaskCoroutine, code: types.CodeType) -> None:
    """The program's own coroutine found inside a task a library made (a web handler)."""
    proxy.seek_entry = False
    where = f"{sources.display_path(code.co_filename)}:{code.co_firstlineno}"
    proxy._state.recorder.emit(wire.ENTRY, proxy.task_id, code.co_qualname, where)


def _check_rename(proxy: TaskCoroutine, state: LoopState) -> None:
    task = asyncio.current_task()
    if task is not None and task.get_coro() is proxy and task.get_name() != proxy.sent_name:
        proxy.sent_name = task.get_name()
        state.recorder.emit(wire.RENAME, proxy.task_id, proxy.sent_name)


# The frame of a step of the Python proxy: the watchdog's walk up the loop thread's stack stops
# at it. (A native proxy's step has no frame: the walk stops at its coroutine's own frame.)
STEP_CODE = TaskCoroutine.send.__code__
# The proxy of the core in use (see core.py), a Coroutine either way (asyncio.iscoroutine).
TaskProxy: type = core.native.TaskCoroutine if core.native is not None else TaskCoroutine
collections.abc.Coroutine.register(TaskProxy)


def qualname_of(coro: object) -> str:
    name = getattr(coro, "__qualname__", None)
    if isinstance(name, str) and name:
        return name
    agen = _closed_generator(coro)
    if agen is not None:
        return f"{agen.__qualname__} (closing)"
    return type(coro).__qualname__


def _closed_generator(coro: object) -> types.AsyncGeneratorType[Any, Any] | None:
    """The async generator a task closes: asyncio finalizes an async generator left unfinished
    by running ``agen.aclose()`` (an ``async_generator_athrow``) as a task of its own."""
    if type(coro).__name__ != "async_generator_athrow":
        return None
    return next((r for r in gc.get_referents(coro) if type(r) is types.AsyncGeneratorType), None)


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep


def is_asyncio_internal(coro: object) -> bool:
    """asyncio's own housekeeping coroutines (accepting connections, shutting down), and
    uvloop's (compiled from ``uvloop/loop.pyx``)."""
    code = getattr(coro, "cr_code", None)
    if not isinstance(code, types.CodeType):
        return _closed_generator(coro) is not None  # asyncio's finalizer closing a generator
    return is_internal_code(code)


def is_internal_code(code: types.CodeType) -> bool:
    """``is_asyncio_internal`` for a coroutine running ``code``."""
    return code.co_filename.startswith(_ASYNCIO_DIR) or code.co_filename.startswith("uvloop/")

