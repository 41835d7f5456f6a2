"""Threads that work for a task without ``run_in_executor``.

Starlette's ``def`` endpoints and ``anyio.to_thread`` run in anyio's own worker threads, aiosqlite
runs every query in its connection's thread, and programs start threads of their own. loopviz
cannot see such a thread start a job, but it sees the thread hand the result back to the loop,
because that has to go through the loop: ``loop.call_soon_threadsafe`` (anyio, aiosqlite,
``run_coroutine_threadsafe``) or a future's result set from that thread. When the handed-back
result wakes a task, loopviz records a ``thread_job``: which thread, for which task, since when
that task waited (its last suspend), and what the thread handed back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loopviz import wire
from loopviz.recorder.failures import report_recording_failure
from loopviz.wire import NONE

if TYPE_CHECKING:
    from loopviz.recorder.loops import LoopState

_clock = time.perf_counter_ns
WAKEUP_NAMES = frozenset({"task_wakeup", "__wakeup", "_Task__wakeup"})


def make_call_soon_threadsafe(
    loop: asyncio.AbstractEventLoop, state: LoopState
) -> Callable[..., asyncio.Handle]:
    """Wrap one loop's ``call_soon_threadsafe`` to note hand-backs from other threads.

    The callback itself is passed on untouched. Which task waits for a handed-back future is
    read when the future wakes it (``took_result``, from the loop's ``call_soon``), not now: a
    fast thread (aiosqlite's) often hands its result back before the task that asked for it has
    finished the step that will wait on it."""
    original = loop.call_soon_threadsafe
    get_ident = threading.get_ident
    handed_back = state.handed_back

    def call_soon_threadsafe(
        callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.Handle:
        if get_ident() != state.thread_id:
            try:
                future = _future_in(callback, args)
                if future is None:  # run_coroutine_threadsafe, a plain callback: no waiter
                    record_handoff(state, None, _callable_name(callback))
                elif state.jobs.get_by_future(future) is None:  # not run_in_executor's own
                    thread = threading.current_thread().name
                    handed_back[future] = (thread, _callable_name(callback))
            except Exception:  # recording must never break the hand-back itself
                report_recording_failure("a thread's hand-back")
        return original(callback, *args, context=context)

    return call_soon_threadsafe


def took_result(state: LoopState, task: object, future: object) -> None:
    """The loop is waking ``task`` with ``future``'s result: if a thread handed it back, that
    thread worked for this task (called from the loop's ``call_soon`` wrapper)."""
    handoff = state.handed_back.pop(future, None)
    if handoff is not None:
        thread, what = handoff
        record_handoff(state, task, what, thread)


def _future_in(callback: object, args: tuple[Any, ...]) -> asyncio.Future[Any] | None:
    for candidate in (getattr(callback, "__self__", None), *args):
        if isinstance(candidate, asyncio.Future) and not isinstance(candidate, asyncio.Task):
            return candidate
    return None


def _callable_name(func: object) -> str:
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    if ".<locals>." in name:  # run_coroutine_threadsafe.<locals>.callback -> the outer call
        name = name.split(".<locals>.")[0]
    return f"{name}()"


def record_handoff(
    state: LoopState, task: object, what: str, thread: str | None = None
) -> None:
    """``thread`` (this one by default) handed ``what`` back to ``state``'s loop for ``task``
    (or for no task)."""
    recorder = state.recorder
    task_id = NONE
    start = NONE
    if task is not None:
        task_id = getattr(task, "_loopviz_task_id", NONE)
        get_coro = getattr(task, "get_coro", None)
        coro = get_coro() if get_coro is not None else None
        start = getattr(coro, "suspended_at", NONE)
    if thread is None:
        thread = threading.current_thread().name
    recorder.events.extend(
        (wire.THREAD_JOB, _clock() - recorder.t0, thread, task_id, what, start)
    )
