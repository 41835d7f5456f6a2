"""Threads that work for a task without ``run_in_executor``.

Starlette's ``def`` endpoints and ``anyio.to_thread`` run in anyio's own worker threads, aiosqlite
runs every query in its connection's thread, and programs start threads of their own. loopviz
cannot see such a thread start a job, but it sees the moment the thread hands the result back to
the loop, because that has to go through the loop: ``loop.call_soon_threadsafe`` (anyio,
aiosqlite, ``run_coroutine_threadsafe``) or a future's result set from that thread. At that moment
it records a ``thread_job``: which thread, for which waiting task, since when that task waited
(the task's last suspend), and what the thread handed back.
"""

from __future__ import annotations

import asyncio
import threading
import time

from loopviz import wire
from loopviz.wire import NONE

_clock = time.perf_counter_ns
WAKEUP_NAMES = frozenset({"task_wakeup", "__wakeup", "_Task__wakeup"})


def make_call_soon_threadsafe(loop, state):
    """Wrap one loop's ``call_soon_threadsafe`` to record hand-backs from other threads."""
    original = loop.call_soon_threadsafe
    get_ident = threading.get_ident

    def call_soon_threadsafe(callback, *args, context=None):
        if get_ident() != state.thread_id:
            try:
                _record_callback(state, callback, args)
            except Exception:  # recording must never break the hand-back itself
                from loopviz.recorder.runtime import report_internal_error

                report_internal_error()
        return original(callback, *args, context=context)

    return call_soon_threadsafe


def _record_callback(state, callback, args: tuple) -> None:
    for candidate in (getattr(callback, "__self__", None), *args):
        if isinstance(candidate, asyncio.Future) and not isinstance(candidate, asyncio.Task):
            if state.jobs.get_by_future(candidate) is not None:
                return  # a run_in_executor job: recorded as it ran, with its own lane
            task = _waiter_of(candidate)
            record_handoff(state, task, _callable_name(callback))
            return
    record_handoff(state, None, _callable_name(callback))


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


def record_handoff(state, task, what: str) -> None:
    """This thread handed ``what`` back to ``state``'s loop for ``task`` (or for no task)."""
    recorder = state.recorder
    task_id = NONE
    start = NONE
    if task is not None:
        task_id = getattr(task, "_loopviz_task_id", NONE)
        coro = task.get_coro() if hasattr(task, "get_coro") else None
        start = getattr(coro, "suspended_at", NONE)
    thread = threading.current_thread().name
    recorder.events.extend(
        (wire.THREAD_JOB, _clock() - recorder.t0, thread, task_id, what, start)
    )
