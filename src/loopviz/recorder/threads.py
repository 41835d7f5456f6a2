"""Threads that work for a task without ``run_in_executor``.

Starlette's ``def`` endpoints and ``anyio.to_thread`` run in anyio's own worker threads, aiosqlite
runs every query in its connection's thread, and programs start threads of their own. loopviz
cannot see such a thread start a job, but it sees the thread hand the result back to the loop,
because that has to go through the loop: ``loop.call_soon_threadsafe`` (anyio, aiosqlite,
``run_coroutine_threadsafe``) or a future's result set from that thread. When the loop takes the
result, loopviz records a ``thread_job``: which thread, for which waiting task, since when that
task waited (its last suspend), and what the thread handed back.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time

from loopviz import wire
from loopviz.wire import NONE

_clock = time.perf_counter_ns
WAKEUP_NAMES = frozenset({"task_wakeup", "__wakeup", "_Task__wakeup"})


def make_call_soon_threadsafe(loop, state):
    """Wrap one loop's ``call_soon_threadsafe`` to record hand-backs from other threads.

    Which task waits for the result is read when the loop runs the callback, not when the thread
    calls: a fast thread (aiosqlite's) often hands its result back before the task that asked for
    it has finished the step that now waits on it."""
    original = loop.call_soon_threadsafe
    get_ident = threading.get_ident

    def call_soon_threadsafe(callback, *args, context=None):
        if get_ident() != state.thread_id:
            callback = _recording(state, callback, args, threading.current_thread().name)
        return original(callback, *args, context=context)

    return call_soon_threadsafe


def _recording(state, callback, args: tuple, thread: str):
    @functools.wraps(callback)  # the loop's debug messages still name the program's callback
    def handed_back(*call_args):
        try:
            _record_callback(state, callback, args, thread)
        except Exception:  # recording must never break the hand-back itself
            from loopviz.recorder.runtime import report_recording_failure

            report_recording_failure("a thread's hand-back")
        return callback(*call_args)

    return handed_back


def _record_callback(state, callback, args: tuple, thread: str) -> None:
    for candidate in (getattr(callback, "__self__", None), *args):
        if isinstance(candidate, asyncio.Future) and not isinstance(candidate, asyncio.Task):
            if state.jobs.get_by_future(candidate) is not None:
                return  # a run_in_executor job: recorded as it ran, with its own lane
            task = _waiter_of(candidate)
            if task is not None:  # a result nobody awaits (a thread told to stop) is no job
                record_handoff(state, task, _callable_name(callback), thread)
            return
    record_handoff(state, None, _callable_name(callback), thread)


def _waiter_of(future: asyncio.Future):
    """The task waiting on ``future``: the one whose wake-up is among its done callbacks."""
    for entry in getattr(future, "_callbacks", None) or ():
        callback = entry[0] if isinstance(entry, tuple) else entry
        if getattr(callback, "__name__", "") in WAKEUP_NAMES:
            return getattr(callback, "__self__", None)
    return None


def _callable_name(func) -> str:
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    if ".<locals>." in name:  # run_coroutine_threadsafe.<locals>.callback -> the outer call
        name = name.split(".<locals>.")[0]
    return f"{name}()"


def record_handoff(state, task, what: str, thread: str | None = None) -> None:
    """``thread`` (this one by default) handed ``what`` back to ``state``'s loop for ``task``
    (or for no task)."""
    recorder = state.recorder
    task_id = NONE
    start = NONE
    if task is not None:
        task_id = getattr(task, "_loopviz_task_id", NONE)
        coro = task.get_coro() if hasattr(task, "get_coro") else None
        start = getattr(coro, "suspended_at", NONE)
    if thread is None:
        thread = threading.current_thread().name
    recorder.events.extend(
        (wire.THREAD_JOB, _clock() - recorder.t0, thread, task_id, what, start)
    )
