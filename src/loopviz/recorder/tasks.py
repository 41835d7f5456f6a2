"""Seeing every task, however the program makes it.

A task factory only sees tasks made through ``loop.create_task``; libraries also call
``asyncio.Task(coro, loop=loop, eager_start=True)`` directly (aiohttp), capture
``eager_task_factory``, or run loops loopviz never made. Every one of them constructs an
``asyncio.Task``, so loopviz replaces ``asyncio.Task`` with a subclass whose ``__init__`` wraps the
coroutine in the recording proxy before the C ``Task.__init__`` runs (an eager first step included).

The subclass is invisible to the program in all it does: it is named and printed as
``_asyncio.Task``, ``isinstance(t, asyncio.Task)`` holds for every task made after loopviz started,
the program may subclass it (mixins and metaclasses included), no task factory is installed
(``loop.get_task_factory()`` is what the program set), and asyncio debug mode's "created at" names
the program's line, not ours. A failure inside its recording leaves the task unrecorded, never the
program's step changed.

What it cannot see (a task built from a reference to the C class taken before loopviz started) is
counted through asyncio's registry of tasks and reported as ``unseen`` at the end.
"""

from __future__ import annotations

import asyncio
import asyncio.tasks
import os
import sys
import threading
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from loopviz import wire
from loopviz.recorder import core, sources
from loopviz.recorder.failures import report_recording_failure
from loopviz.recorder.proxy import TaskProxy, is_asyncio_internal, is_internal_code, qualname_of
from loopviz.wire import NONE

if TYPE_CHECKING:
    from loopviz.recorder.loops import LoopInstaller
    from loopviz.recorder.proxy import TaskCoroutine
    from loopviz.recorder.writer import Recorder

_CTask = asyncio.Task
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_LOOPVIZ_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SIMPLE_ARGS = (int, float, str, bytes, bool, type(None))
_ARG_REPR_LIMIT = 24


def install_task_class(installer: LoopInstaller) -> None:
    """Make ``asyncio.Task`` (and the eager factory built on it) the recording subclass."""
    task_class = make_task_class(installer)
    _replace_in_asyncio("Task", task_class)
    make_eager_factory = getattr(asyncio.tasks, "create_eager_task_factory", None)  # 3.12+
    if make_eager_factory is not None:
        _replace_in_asyncio("eager_task_factory", make_eager_factory(task_class))
    _count_unseen_tasks(installer.recorder, task_class)


def _replace_in_asyncio(name: str, value: object) -> None:
    for module in (asyncio, asyncio.tasks):
        setattr(module, name, value)


def make_task_class(installer: LoopInstaller) -> type[asyncio.Task[Any]]:
    """The recording subclass of ``asyncio.Task`` for ``installer``'s recorder."""
    record_creation = _creation_recorder(installer)
    iscoroutine = asyncio.iscoroutine

    class Task(_CTask[Any]):
        __slots__ = ("_loopviz_task_id",)

        if core.native is not None:  # the same, in C
            __init__ = core.native.TaskInit(
                record_creation=record_creation, state_of=installer.state_of,
                iscoroutine=iscoroutine, trim_traceback=trim_source_traceback,
                report_failure=report_recording_failure, base=_CTask,
            )  # fmt: skip
        else:

            def __init__(self, coro: Any, *args: Any, **kwargs: Any) -> None:
                if not isinstance(self, _CTask):  # not a task: asyncio's own TypeError
                    _CTask.__init__(self, coro, *args, **kwargs)
                try:
                    proxy = None
                    if iscoroutine(coro) and type(coro) is not TaskProxy:
                        proxy = record_creation(self, coro, kwargs.get("loop"))
                except Exception:  # never the program's failure: this task goes unrecorded
                    report_recording_failure("a task's creation")
                    proxy = None
                if proxy is None:  # asyncio's own error for a non-coroutine; a proxy never twice
                    super().__init__(coro, *args, **kwargs)
                    return
                try:
                    super().__init__(proxy, *args, **kwargs)
                except BaseException:
                    proxy.created = None  # no task after all: its create is dropped
                    # the coroutine is the program's to warn about, as plainly, and at once: this
                    # frame stays in the error's traceback
                    proxy._coro = coro = None
                    raise
                try:
                    if proxy._state is None:  # made before its loop ran: the loop asyncio gave it
                        proxy._state = installer.state_of(self.get_loop())
                    trace = getattr(self, "_source_traceback", None)
                    if trace is not None:
                        trim_source_traceback(trace)
                    proxy.created = True
                except Exception:
                    report_recording_failure("a task's creation")
                    proxy.created = None

    Task.__name__ = Task.__qualname__ = "Task"
    Task.__module__ = _CTask.__module__
    Task.__doc__ = _CTask.__doc__
    task_class: type[asyncio.Task[Any]] = Task  # (its __init__ may be the native core's)
    return task_class


def trim_source_traceback(trace: list[Any]) -> None:
    """Debug mode's "created at" of a task names the program's line, not loopviz's."""
    while trace and trace[-1].filename.startswith(_LOOPVIZ_DIR):
        del trace[-1]


def _creation_recorder(installer: LoopInstaller) -> Callable[[Any, Any, Any], Any]:
    """``record_creation(task, coro, loop)``: the proxy for ``coro``, its ``create`` queued
    (sent once the task exists); None for a loop that is not an event loop (a test's mock),
    which loopviz leaves alone. The native core's does the same in C."""
    recorder = installer.recorder
    task_ids = recorder.task_ids
    current_task, get_running_loop = asyncio.current_task, asyncio.events._get_running_loop
    if core.native is not None:
        native: Callable[[Any, Any, Any], Any] = core.native.CreationRecorder(
            state_of=installer.state_of, task_ids=task_ids, events=recorder.events,
            get_running_loop=get_running_loop, current_task=current_task,
            loop_class=asyncio.AbstractEventLoop, creation_facts=creation_facts,
            code_facts=code_facts, coroutine_args=coroutine_args, spawn_site=spawn_site,
            outside=_outside_asyncio, t0=recorder.t0,
        )  # fmt: skip
        return native
    clock = recorder.now
    pending = recorder.pending_creates

    def record_creation(task: Any, coro: Any, loop: object) -> TaskCoroutine | None:
        t = clock()
        loop = loop or get_running_loop()
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            return None
        task_id = next(task_ids)
        task._loopviz_task_id = task_id
        state = installer.state_of(loop) if loop is not None else None
        parent_task = current_task(loop) if loop is not None else None
        parent = getattr(parent_task, "_loopviz_task_id", NONE)
        proxy: TaskCoroutine = TaskProxy(coro, task_id, state)
        seek_entry, args, qualname, internal = creation_facts(coro)
        proxy.seek_entry = seek_entry
        site = spawn_site(sys._getframe(2))  # (the frame that called Task(), past __init__)
        # Named now: a compiled coroutine (uvloop's) loses its name once it has run.
        pending.extend((t, task_id, parent, site, args, qualname, internal, task, proxy))
        return proxy

    return record_creation


def creation_facts(coro: object) -> tuple[bool, str, str, bool]:
    """What a new task's ``create`` says of its coroutine: (seek its entry, its arguments, its
    name, asyncio's own)."""
    return (
        not sources.is_user_code(getattr(coro, "cr_code", None)),
        coroutine_args(coro),
        qualname_of(coro),
        is_asyncio_internal(coro),
    )


def code_facts(code: CodeType) -> tuple[bool, bool]:
    """``creation_facts``' first and last for any coroutine running ``code`` (the native core
    keeps them per code object)."""
    return not sources.is_user_code(code), is_internal_code(code)


def _count_unseen_tasks(recorder: Recorder, task_class: type) -> None:
    """asyncio registers every non-eager task in a WeakSet (``_scheduled_tasks`` on 3.12+,
    ``_all_tasks`` on 3.11) by calling its ``add``; a task of another class was not recorded."""
    registry = getattr(asyncio.tasks, "_scheduled_tasks", None)
    if registry is None:
        registry = getattr(asyncio.tasks, "_all_tasks", None)
    if not isinstance(registry, weakref.WeakSet):
        return  # 3.14 keeps native tasks in a per-thread list: see docs/recording.md
    original_add = registry.add
    unseen = recorder.unseen_tasks

    def add(task: object) -> None:
        original_add(task)
        if type(task) is not task_class and not hasattr(task, "_loopviz_task_id"):
            get_coro = getattr(task, "get_coro", None)
            coro = get_coro() if get_coro is not None else None
            name = getattr(coro, "__qualname__", None) or type(task).__name__
            with unseen_lock:
                unseen.append(name)

    unseen_lock = threading.Lock()
    setattr(registry, "add", add)  # noqa: B010 (a method replaced on this one instance)


def unseen_event(names: list[str]) -> tuple[int, int, str] | tuple[()]:
    """The ``unseen`` event's fields for tasks the recorder could not see, if there were any."""
    if not names:
        return ()
    shown = sorted(set(names))[:5]
    return (wire.UNSEEN, len(names), ", ".join(shown))


_spawn_sites: dict[tuple[CodeType, int], str] = {}  # the same few lines make most tasks
_outside_asyncio: dict[CodeType, bool] = {}


def spawn_site(frame: FrameType | None) -> str:
    """``file:line`` of the innermost frame outside asyncio and loopviz: the program's own line,
    or the line in a library (uvicorn, aiohttp...) that made the task."""
    while frame is not None:
        code = frame.f_code
        outside = _outside_asyncio.get(code)
        if outside is None:
            name = code.co_filename
            outside = _outside_asyncio[code] = not (
                name.startswith(_ASYNCIO_DIR) or name.startswith(_LOOPVIZ_DIR)
            )
        if outside:
            key = (code, frame.f_lineno)
            site = _spawn_sites.get(key)
            if site is None:
                site = _spawn_sites[key] = sources.where(frame)
            return site
        frame = frame.f_back
    return ""


def coroutine_args(coro: object) -> str:
    """The coroutine's arguments as a short string, for telling apart tasks of one coroutine
    (``download('a.com')``, ``download('b.org')``). Only values whose repr runs no program
    code (numbers, strings, None...) are shown; ``self`` and ``cls`` are left out."""
    code = getattr(coro, "cr_code", None)
    frame = getattr(coro, "cr_frame", None)
    if code is None or frame is None or not code.co_argcount:
        return ""
    names = code.co_varnames[: code.co_argcount]
    if names[0] in ("self", "cls"):
        names = names[1:]
    if not names:
        return ""
    values = frame.f_locals
    shown = []
    for name in names:
        value = values.get(name)
        if type(value) not in _SIMPLE_ARGS:
            shown.append("...")
            continue
        text = repr(value)
        shown.append(text if len(text) <= _ARG_REPR_LIMIT else text[: _ARG_REPR_LIMIT - 3] + "...")
    return ", ".join(shown)
