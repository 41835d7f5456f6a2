"""Naming what a suspended task waits on.

When a task step suspends, the Task is handed the value its coroutine yielded: ``None`` for a bare
yield, or the Future it now waits on. That Future alone rarely says much, so we also walk the
``cr_await`` chain of coroutines and look for a known asyncio primitive (``Lock.acquire``,
``Queue.get``, ``sleep``...) by its code object. The outermost primitive wins: ``Queue.join`` waits
on an internal ``Event``, and the person reading the timeline wants to see ``queue.join``.

The result is a flat tuple matching the wire's suspend layout, so nothing here allocates a
container per event beyond that one tuple.
"""

from __future__ import annotations

import asyncio
import asyncio.base_subprocess
import asyncio.locks
import asyncio.queues
import asyncio.streams
import asyncio.subprocess
import asyncio.taskgroups
import asyncio.tasks
import contextlib
import itertools
import os
import weakref
from collections.abc import Callable, Iterable
from functools import partial
from gc import get_referents
from types import AsyncGeneratorType, CodeType, CoroutineType, FrameType, GeneratorType
from typing import Any

from loopviz.recorder.libraries import WaitFields, library_wait
from loopviz.recorder.sources import display_path, is_user_file
from loopviz.wire import NONE

# (kind, label, obj, deadline, ref, where)
Wait = tuple[str, str, int, int, object, str]
# Names a known primitive's wait from its frame and the future the task yielded.
WaitHandler = Callable[[FrameType, object], WaitFields]

YIELD = ("sleep", "sleep 0", NONE, NONE, 0, "")
# What a suspend says when naming its wait failed (a bug of ours, reported once on stderr).
UNKNOWN_WAIT = ("future", "not recorded", NONE, NONE, NONE, "")
# Delays (ns) past this are "forever": a sleep of infinity, or of centuries, fits no int64.
_FOREVER_NS = 2**63 - 1
# Awaitables that hold the coroutine or generator they run but expose it only to the garbage
# collector, which is how a wait is followed into them: what ``async for`` and ``agen.athrow()``
# await, and what ``coro.__await__()`` returns (a library's awaitable object wrapping a coroutine).
_OPAQUE_AWAITABLES = frozenset(
    {"async_generator_asend", "async_generator_athrow", "coroutine_wrapper"}
)
_FOLLOWED = (CoroutineType, AsyncGeneratorType, GeneratorType)


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep


class ObjectIds:
    """Small ids for the objects tasks wait on: one per object, for the whole run, so waits on
    one Lock share an id and no two objects ever get the same one.

    An object is held by weak reference (keyed on ``id()``, so objects that define ``__eq__``
    stay apart), and its entry goes when it dies: the table holds live objects only, and a new
    object at a dead one's address gets a new id. An object that cannot be weakly referenced
    gets a new id at each wait: waits on it are not linked, rather than linked to a stranger."""

    def __init__(self) -> None:
        self._ids: dict[int, tuple[int, weakref.ref[object]]] = {}
        self._numbers = itertools.count(1)
        # id(object) -> (code, fields): what a wait in that code on that live object is, where
        # the object alone says it (a stream's read, by its peer): the native core reads it
        # instead of calling the handler again (see keep_wait)
        self.waits: dict[int, tuple[CodeType, WaitFields]] = {}

    def of(self, obj: object) -> int:
        key = id(obj)
        found = self._ids.get(key)
        if found is not None and found[1]() is obj:
            return found[0]
        number = next(self._numbers)
        # (no weak reference to an object of a __slots__ class without __weakref__: not kept)
        with contextlib.suppress(TypeError):
            self._ids[key] = (number, weakref.ref(obj, partial(self._forget, key)))
        return number

    def keep_wait(self, obj: object, code: CodeType, fields: WaitFields) -> None:
        """Keep ``fields`` as what every wait in ``code`` on ``obj`` is, for as long as ``obj``
        lives: only for an object with an id here (one held by weak reference), so that the
        entry goes when it dies, before another object can have its address."""
        key = id(obj)
        found = self._ids.get(key)
        if found is not None and found[1]() is obj:
            self.waits[key] = (code, fields)

    def _forget(self, key: int, ref: weakref.ref[object]) -> None:
        found = self._ids.get(key)
        if found is not None and found[1] is ref:  # (not a newer object's entry)
            del self._ids[key]
            self.waits.pop(key, None)


def _private_code(owner: object, name: str) -> CodeType:
    """The code of asyncio's private function ``owner.name`` (absent from typeshed's stubs)."""
    code: CodeType = getattr(owner, name).__code__
    return code


def _seconds(value: float) -> str:
    return f"{value:g}s"


class WaitNamer:
    """Turns (yielded value, coroutine) into a wait description for one loop's clock."""

    def __init__(
        self,
        loop_time_to_ns: Callable[[float], int],
        task_id_of: Callable[[object], int],
        job_of_future: Callable[[object], tuple[int, str] | None],
    ) -> None:
        self._to_ns = loop_time_to_ns
        self._task_id = task_id_of
        self._job_of = job_of_future
        self._objects = ObjectIds()
        self.owner_waits = self._objects.waits  # the native core reads it (see keep_wait)
        # where asyncio.sleep keeps what _sleep reads: the native core reads them in its frame
        sleep_code = asyncio.tasks.sleep.__code__
        self.sleep_locals = (
            sleep_code, sleep_code.co_varnames.index("delay"), sleep_code.co_varnames.index("h")
        )
        self.entry: CodeType | None = None  # see _walk
        # code object -> its handler if it is a known primitive, else the display path of a
        # user file, or "" (see _handler_for); the native core reads it too
        self.by_code: dict[CodeType, WaitHandler | str] = {
            asyncio.tasks.sleep.__code__: self._sleep,
            asyncio.tasks.wait_for.__code__: self._wait_for,
            asyncio.locks.Lock.acquire.__code__: self._primitive("lock", lambda o: "Lock"),
            asyncio.locks.Semaphore.acquire.__code__: self._primitive(
                "semaphore", lambda o: f"{type(o).__name__} ({o._value} free)"
            ),
            asyncio.locks.Event.wait.__code__: self._primitive("event", lambda o: "Event"),
            asyncio.locks.Condition.wait.__code__: self._primitive(
                "condition", lambda o: "Condition"
            ),
            asyncio.locks.Barrier.wait.__code__: self._primitive(
                "barrier", lambda o: f"Barrier ({o.n_waiting}/{o.parties} waiting)"
            ),
            asyncio.queues.Queue.get.__code__: self._primitive(
                "queue", lambda o: f"queue.get (size {o.qsize()})"
            ),
            asyncio.queues.Queue.put.__code__: self._primitive(
                "queue", lambda o: f"queue.put (full {o.qsize()}/{o.maxsize})"
            ),
            asyncio.queues.Queue.join.__code__: self._primitive(
                "queue", lambda o: f"queue.join ({o._unfinished_tasks} unfinished)"
            ),
            asyncio.taskgroups.TaskGroup.__aexit__.__code__: self._task_group,
            _private_code(asyncio.tasks, "_wait"): self._children_of("fs", "wait"),
            _private_code(asyncio.streams.StreamReader, "_wait_for_data"): self._stream_read,
            _private_code(asyncio.streams.FlowControlMixin, "_drain_helper"): self._stream_write,
            asyncio.subprocess.Process.wait.__code__: self._process("wait"),
            asyncio.subprocess.Process.communicate.__code__: self._process("communicate"),
            asyncio.base_subprocess.BaseSubprocessTransport._wait.__code__: self._process("wait"),
            asyncio.base_subprocess.BaseSubprocessTransport._connect_pipes.__code__: (
                self._process("start")
            ),
        }
        unix_loop = getattr(asyncio, "unix_events", None)
        if unix_loop is not None:  # not on Windows
            make = unix_loop._UnixSelectorEventLoop._make_subprocess_transport
            self.by_code[make.__code__] = self._process("start")
        for name in ("sock_recv", "sock_recv_into", "sock_recvfrom", "sock_accept"):
            self._add_loop_io(name, "read")
        for name in ("sock_sendall", "sock_sendto", "sock_connect"):
            self._add_loop_io(name, "write")

    def _add_loop_io(self, method: str, direction: str) -> None:
        from asyncio import selector_events

        func = getattr(selector_events.BaseSelectorEventLoop, method, None)
        if func is not None:
            self.by_code[func.__code__] = lambda frame, fut: (
                "io",
                f"{direction} {method}",
                NONE,
                NONE,
                NONE,
            )

    def describe(self, yielded: object, coro: object) -> Wait:
        if yielded is None:
            return YIELD
        known, user_where, library_code = self._walk(coro)
        if known is not None:
            code_handler, frame = known
            kind, label, obj, deadline, ref = code_handler(frame, yielded)
            return kind, label, obj, deadline, ref, user_where
        kind, label, obj, deadline, ref = self._describe_future(yielded)
        if kind == "future" and library_code is not None:
            label = f"future in {library_code.co_qualname}"  # the library call that waits
        return kind, label, obj, deadline, ref, user_where

    def _walk(
        self, coro: object
    ) -> tuple[tuple[WaitHandler, FrameType] | None, str, CodeType | None]:
        """Follow the await chain (coroutines, generators, async generators) down to what the
        task really waits on. Returns the outermost known primitive (its handler and frame),
        the innermost user line, and the innermost library code; sets ``entry`` to the
        outermost user coroutine's code (the program's own function inside a library's task)."""
        known: tuple[WaitHandler, FrameType] | None = None
        user_where = ""
        library_code: CodeType | None = None
        library_line = None
        self.entry = None
        node: Any = coro
        by_code = self.by_code
        while True:
            kind = type(node)
            if kind is CoroutineType:
                code, frame, awaited = node.cr_code, node.cr_frame, node.cr_await
            elif kind is GeneratorType:
                code, frame, awaited = node.gi_code, node.gi_frame, node.gi_yieldfrom
            elif kind is AsyncGeneratorType:
                code, frame, awaited = node.ag_code, node.ag_frame, node.ag_await
            elif kind.__name__ in _OPAQUE_AWAITABLES:
                node = next((r for r in get_referents(node) if type(r) in _FOLLOWED), None)
                if node is None:
                    break
                continue
            elif hasattr(kind, "cr_await"):  # a compiled coroutine (Cython's, uvloop's)
                code, frame, awaited = node.cr_code, node.cr_frame, node.cr_await
            else:  # the awaited future, or an awaitable of the program's: never asked, as its
                break  # attributes may be the program's own code
            if code is None or frame is None:
                break
            handler = by_code.get(code)
            if handler is None:
                handler = by_code[code] = self._handler_for(code)
            if isinstance(handler, str):
                if handler:
                    user_where = f"{handler}:{frame.f_lineno}"
                    if self.entry is None:
                        self.entry = code
                elif not code.co_filename.startswith(_ASYNCIO_DIR):
                    library_code, library_line = code, frame.f_lineno
            elif known is None:
                known = (handler, frame)
            if awaited is None:
                break
            node = awaited
        if not user_where and library_code is not None:  # a library's own task: its line
            user_where = f"{display_path(library_code.co_filename)}:{library_line}"
        return known, user_where, library_code

    def _handler_for(self, code: CodeType) -> WaitHandler | str:
        """Cached per code object: a library's known wait (anyio, aiosqlite, Starlette...), else
        the display path of a user file, or "" for other library code."""
        filename = code.co_filename
        if is_user_file(filename):
            return display_path(filename)
        package = display_path(filename).split("/", 1)[0]
        return library_wait(package, code.co_qualname, self) or ""

    def _describe_future(self, fut: object) -> WaitFields:
        if isinstance(fut, asyncio.Task):
            target = self._task_id(fut)
            return "task", f"task {fut.get_name()}", NONE, NONE, target
        children = getattr(fut, "_children", None)
        if children is not None and type(fut).__name__ == "_GatheringFuture":
            ids = [self._task_id(child) for child in children]
            return "gather", f"gather ({len(ids)})", NONE, NONE, ids
        job = self._job_of(fut)
        if job is not None:
            job_id, func = job
            return "thread", f"thread {func}", NONE, NONE, job_id
        return "future", "future", NONE, NONE, NONE

    def _sleep(self, frame: FrameType, fut: object) -> WaitFields:
        local = frame.f_locals
        delay = local.get("delay", 0)
        handle = local.get("h")
        deadline = self._to_ns(handle.when()) if handle is not None else NONE
        delay_ns = delay * 1e9
        delay_ns = int(delay_ns) if -_FOREVER_NS < delay_ns < _FOREVER_NS else NONE
        return "sleep", f"sleep {_seconds(delay)}", NONE, deadline, delay_ns

    def object_id(self, obj: object) -> int:
        return self._objects.of(obj)

    def task_ids(self, tasks: Iterable[object]) -> list[int]:
        return [self._task_id(task) for task in tasks if isinstance(task, asyncio.Task)]

    def _wait_for(self, frame: FrameType, fut: object) -> WaitFields:
        local = frame.f_locals
        inner = local.get("fut")
        handle = local.get("timeout_handle")
        deadline = self._to_ns(handle.when()) if handle is not None else NONE
        timeout = local.get("timeout")
        suffix = f", timeout {_seconds(timeout)}" if timeout is not None else ""
        if isinstance(inner, asyncio.Task):
            return (
                "task",
                f"wait_for {inner.get_name()}{suffix}",
                NONE,
                deadline,
                self._task_id(inner),
            )
        kind, label, obj, _deadline, ref = self._describe_future(fut)
        return kind, f"wait_for {label}{suffix}", obj, deadline, ref

    def _primitive(self, kind: str, label: Callable[[Any], str]) -> WaitHandler:
        def describe(frame: FrameType, fut: object) -> WaitFields:
            owner = frame.f_locals.get("self")
            return kind, label(owner), self._objects.of(owner), NONE, NONE

        return describe

    def _task_group(self, frame: FrameType, fut: object) -> WaitFields:
        group = frame.f_locals.get("self")
        ids = [self._task_id(task) for task in getattr(group, "_tasks", ())]
        return "gather", f"TaskGroup ({len(ids)} left)", self._objects.of(group), NONE, ids

    def _children_of(self, local_name: str, label: str) -> WaitHandler:
        def describe(frame: FrameType, fut: object) -> WaitFields:
            children = frame.f_locals.get(local_name) or ()
            ids = [self._task_id(child) for child in children if isinstance(child, asyncio.Task)]
            return "gather", f"{label} ({len(ids)})", NONE, NONE, ids

        return describe

    def _process(self, what: str) -> WaitHandler:
        def describe(frame: FrameType, fut: object) -> WaitFields:
            process = frame.f_locals.get("self")  # a Process, its transport, or the loop
            pid = getattr(process, "pid", None) or getattr(process, "_pid", None)
            if not isinstance(pid, int):
                return "process", f"process {what}", NONE, NONE, NONE
            return "process", f"process {pid} {what}", self._objects.of(process), NONE, pid

        return describe

    def _stream_read(self, frame: FrameType, fut: object) -> WaitFields:
        return self._stream_wait("read", frame)

    def _stream_write(self, frame: FrameType, fut: object) -> WaitFields:
        return self._stream_wait("write", frame)

    def _stream_wait(self, direction: str, frame: FrameType) -> WaitFields:
        """A StreamReader's read, or its protocol's drain: named by the transport's peer, which
        is the stream's for its whole life (a transport is set once, and a closed stream's
        drain fails instead of waiting), so the name is kept for the stream."""
        stream = frame.f_locals.get("self")
        peer = _peer(getattr(stream, "_transport", None))
        fields = ("io", f"{direction} {peer}".rstrip(), self._objects.of(stream), NONE, NONE)
        if peer:
            self._objects.keep_wait(stream, frame.f_code, fields)
        return fields


def _peer(transport: Any) -> str:
    if transport is None:
        return ""
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer) if peer else ""
