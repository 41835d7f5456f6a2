"""Waits inside libraries, named as their users would name them.

asyncio's own primitives are known by their code objects (``waits.py``). Libraries build their
primitives on top of asyncio's, so without this table a memory stream of anyio reads as "Event",
a Starlette ``def`` endpoint as "future". Each entry is found by the library's top-level package
and the waiting function's qualified name (stable across the versions we test, and checked in
``tests/test_corpus.py``); the outermost known wait in an await chain wins, so these take
precedence over the asyncio primitive they wait on inside.

To add one: find the innermost library coroutine of the wait (``loopviz record`` shows
``future in QUALNAME`` for it), and add ``(package, qualname): handler`` below. A handler gets the
coroutine's frame and returns (kind, label, obj, deadline, ref), as ``waits.WaitNamer`` does.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from loopviz.recorder.sources import is_user_code
from loopviz.wire import NONE

if TYPE_CHECKING:
    from loopviz.recorder.waits import WaitNamer

# What a wait handler returns: (kind, label, obj, deadline, ref), as ``waits.WaitNamer``'s do.
WaitFields = tuple[str, str, int, int, object]
Handler = Callable[["WaitNamer", FrameType], WaitFields]


def describe_callable(func: object) -> str:
    """A function as people call it: ``fetch()``, through partials, ``Context.run`` and the
    wrappers a framework puts around the program's own function (FastAPI passes a ``def``
    endpoint as ``partial(_run_sync_endpoint, function=endpoint)``)."""
    while isinstance(func, functools.partial):
        inner = func.func
        candidates = (*func.args, *func.keywords.values())
        # asyncio.to_thread submits partial(context.run, func, *args)
        if getattr(inner, "__qualname__", "") == "Context.run" and func.args:
            inner = func.args[0]
        elif not is_user_code(getattr(inner, "__code__", None)):
            inner = next(
                (c for c in candidates if is_user_code(getattr(c, "__code__", None))), inner
            )
        func = inner
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(func, types.BuiltinFunctionType) and func.__module__ not in (None, "builtins"):
        name = f"{func.__module__}.{name}"  # time.sleep(), not sleep()
    return f"{name or type(func).__qualname__}()"


def _thread_call(local_name: str) -> Handler:
    def handler(namer: WaitNamer, frame: FrameType) -> WaitFields:
        func = frame.f_locals.get(local_name)
        return "thread", f"thread {describe_callable(func)}", NONE, NONE, NONE

    return handler


def _sqlite(namer: WaitNamer, frame: FrameType) -> WaitFields:
    local = frame.f_locals
    func = local.get("fn")
    name = getattr(func, "__name__", None) or "query"
    return "thread", f"sqlite {name}", namer.object_id(local.get("self")), NONE, NONE


def _memory_receive(namer: WaitNamer, frame: FrameType) -> WaitFields:
    state = getattr(frame.f_locals.get("self"), "_state", None)
    buffered = len(getattr(state, "buffer", ()))
    label = f"memory stream receive ({buffered} buffered)"
    return "queue", label, namer.object_id(state), NONE, NONE


def _memory_send(namer: WaitNamer, frame: FrameType) -> WaitFields:
    state = getattr(frame.f_locals.get("self"), "_state", None)
    buffered = len(getattr(state, "buffer", ()))
    size = getattr(state, "max_buffer_size", "?")
    size = "inf" if size == float("inf") else size
    label = f"memory stream send (full {buffered}/{size})"
    return "queue", label, namer.object_id(state), NONE, NONE


def _task_group(namer: WaitNamer, frame: FrameType) -> WaitFields:
    group = frame.f_locals.get("self")
    ids = namer.task_ids(getattr(group, "_tasks", ()))
    return "gather", f"TaskGroup ({len(ids)} left)", namer.object_id(group), NONE, ids


def _primitive(kind: str, label: str) -> Handler:
    def handler(namer: WaitNamer, frame: FrameType) -> WaitFields:
        return kind, label, namer.object_id(frame.f_locals.get("self")), NONE, NONE

    return handler


def _io(label: str) -> Handler:
    def handler(namer: WaitNamer, frame: FrameType) -> WaitFields:
        return "io", label, namer.object_id(frame.f_locals.get("self")), NONE, NONE

    return handler


def _process_wait(namer: WaitNamer, frame: FrameType) -> WaitFields:
    process = frame.f_locals.get("self")
    inner = getattr(process, "_process", process)
    pid = getattr(inner, "pid", None)
    return "process", f"process {pid} wait", namer.object_id(process), NONE, pid or NONE


LIBRARY_WAITS: dict[tuple[str, str], Handler] = {
    ("anyio", "run_sync"): _thread_call("func"),  # anyio.to_thread.run_sync
    ("anyio", "AsyncIOBackend.run_sync_in_worker_thread"): _thread_call("func"),
    ("starlette", "run_in_threadpool"): _thread_call("func"),
    ("anyio", "TaskGroup.__aexit__"): _task_group,
    ("anyio", "MemoryObjectReceiveStream.receive"): _memory_receive,
    ("anyio", "MemoryObjectSendStream.send"): _memory_send,
    ("anyio", "Event.wait"): _primitive("event", "anyio Event"),
    ("anyio", "Lock.acquire"): _primitive("lock", "anyio Lock"),
    ("anyio", "Semaphore.acquire"): _primitive("semaphore", "anyio Semaphore"),
    ("anyio", "CapacityLimiter.acquire"): _primitive("semaphore", "anyio CapacityLimiter"),
    ("anyio", "Process.wait"): _process_wait,
    ("aiosqlite", "Connection._execute"): _sqlite,
    ("aiosqlite", "Connection._connect"): _primitive("thread", "sqlite connect"),
    ("aiosqlite", "Connection.close"): _primitive("thread", "sqlite close"),
    ("anyio", "AsyncIOBackend.connect_tcp"): _io("connect"),
    ("aiohttp", "RequestHandler.start"): _io("waiting for the next request"),
    ("aiohttp", "DataQueue.read"): _io("read response"),
    ("aiohttp", "StreamReader._wait"): _io("read body"),
    ("aiohttp", "TCPConnector._wrap_create_connection"): _io("connect"),
}


def library_wait(
    package: str, qualname: str, namer: WaitNamer
) -> Callable[[FrameType, object], WaitFields] | None:
    """The handler of a known library wait, bound to ``namer``, as ``waits`` calls handlers."""
    handler = LIBRARY_WAITS.get((package, qualname))
    if handler is None:
        return None
    return lambda frame, _future: handler(namer, frame)
