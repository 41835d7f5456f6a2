"""The events of a run, one typed definition per kind: the single statement of their schema.

Everything after the pipe reads these: the wire decoder makes them from the child's flat frames
(wire.py), the trace reader and writer turn them into JSON lines and back (trace.py), and the
model, replay's words and the exports read their fields by name. docs/trace-format.md describes
the same definitions, and tests/test_events.py checks that it describes every kind and field here
and nothing else.

Each kind is a msgspec Struct tagged on ``ev``, so decoding a JSON line or a msgpack map
validates it in C and picks its kind in one step. They are frozen (an event is read, never
changed, once decoded) and made with ``gc=False``: their fields hold only ints, strings, lists of
those and a ``Wait``, which can never form a cycle, so the cyclic GC need not track millions of
them. A field with a default may be missing from older traces.

A ``Wait`` (what a suspend waits on) keeps its facts in fields of their own: the kind, the
object, the deadline, the awaited task or tasks, the job, the process. Its ``label`` is for
people only; nothing reads facts out of it.
"""

from __future__ import annotations

from typing import Annotated, Any, get_args

import msgspec

# Nanoseconds on the trace clock (since the recording started): never negative.
Time = Annotated[int, msgspec.Meta(ge=0)]


class Wait(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What a suspended task waits on (a suspend event's ``waiting_on``).

    ``kind`` says which fields can be set (docs/trace-format.md lists them by kind); a field not
    set is left out of the trace."""

    kind: str  # sleep, task, gather, lock, semaphore, condition, event, barrier, queue, ...
    label: str  # for people: "sleep 0.25s", "queue.get (size 0)"
    obj: int | None = None  # the awaited object's id, shared by every wait on that object
    deadline: int | None = None  # when a sleep ends or a wait_for times out (trace ns)
    delay_ns: int | None = None  # a sleep's length
    target: int | None = None  # the awaited task
    children: list[int] | None = None  # the awaited tasks of a gather, TaskGroup or wait
    job: int | None = None  # the worker-thread job awaited (matches thread_start/thread_end)
    pid: int | None = None  # the awaited subprocess
    where: str = ""  # the file:line in user code where the task awaits
    timeout: int | None = None  # the deadline of the innermost asyncio.timeout around it

    @property
    def in_task_group(self) -> bool:
        """A wait on a TaskGroup's tasks (a ``gather`` wait on an object: gather and wait have
        none)."""
        return self.kind == "gather" and self.obj is not None


class Event(msgspec.Struct, tag_field="ev", frozen=True, gc=False):
    """What every event has: its time. Its kind is the ``ev`` tag. (Each kind says
    ``frozen=True`` again, which msgspec inherits anyway, so that mypy knows it.)"""

    t: Time

    @property
    def ev(self) -> str:
        """The event's kind, as the trace spells it (``create``, ``suspend``...)."""
        return str(self.__struct_config__.tag)


class Hello(Event, tag="hello", frozen=True):
    """The child's first word on the pipe: the clock's zero and who it is. Not in traces."""

    t0: int
    python: str
    pid: int


class Loop(Event, tag="loop", frozen=True):
    impl: str
    unrecorded: str = ""
    id: int | None = None
    thread: str = ""


class Create(Event, tag="create", frozen=True):
    task: int
    name: str
    coro: str
    parent: int | None
    where: str
    internal: bool = False
    loop: int | None = None
    args: str = ""


class Resume(Event, tag="resume", frozen=True):
    task: int


class Suspend(Event, tag="suspend", frozen=True):
    task: int
    waiting_on: Wait


class Done(Event, tag="done", frozen=True):
    task: int
    outcome: str  # returned | raised | cancelled
    detail: str = ""


class BlockBegin(Event, tag="block_begin", frozen=True):
    task: int | None
    start: Time
    where: str
    code: str
    stack: list[str] = []
    gil: bool = False


class Block(Event, tag="block", frozen=True):
    task: int | None
    start: Time
    end: Time
    where: str
    code: str
    stack: list[str] = []
    gil: bool = False


class _WorkerJob(Event, frozen=True):
    """A worker-thread job's start or end (never an event itself: not in AnyEvent)."""

    thread: str
    job: int
    task: int | None
    func: str


class ThreadStart(_WorkerJob, tag="thread_start", frozen=True):
    pass


class ThreadEnd(_WorkerJob, tag="thread_end", frozen=True):
    pass


class Output(Event, tag="output", frozen=True):
    stream: str  # stdout | stderr
    text: str


class Idle(Event, tag="idle", frozen=True):
    start: Time


class Rename(Event, tag="rename", frozen=True):
    task: int
    name: str


class End(Event, tag="end", frozen=True):
    exit_code: int | None
    error: str | None


class Ready(Event, tag="ready", frozen=True):
    task: int
    cause: str  # SLEEP_ENDED (made up by the merger at a sleep's deadline) | "woken"


# The cause of a ready event the merger makes up at a sleep's deadline.
SLEEP_ENDED = "sleep ended"


class Unretrieved(Event, tag="unretrieved", frozen=True):
    task: int
    detail: str


class Entry(Event, tag="entry", frozen=True):
    task: int
    func: str
    where: str


class ThreadJob(Event, tag="thread_job", frozen=True):
    thread: str
    task: int | None
    func: str
    start: Time | None


class Unseen(Event, tag="unseen", frozen=True):
    count: int
    detail: str


class Source(Event, tag="source", frozen=True):
    file: str
    path: str
    sha256: str


# Any one event: what a trace line or a stored event decodes into.
AnyEvent = (
    Hello | Loop | Create | Resume | Suspend | Done | BlockBegin | Block | ThreadStart | ThreadEnd
    | Output | Idle | Rename | End | Ready | Unretrieved | Entry | ThreadJob | Unseen | Source
)

# Kind name (the ``ev`` tag) -> its definition.
KINDS: dict[str, type[Event]] = {
    str(kind.__struct_config__.tag): kind for kind in get_args(AnyEvent)
}

# What a bare yield (``asyncio.sleep(0)``) waits on, shared by all of them (a Wait is frozen).
BARE_YIELD_WAIT = Wait(kind="sleep", label="sleep 0", delay_ns=0)


def task_of(event: Event) -> int | None:
    """The task an event is about, if its kind names one."""
    task: int | None = getattr(event, "task", None)
    return task


def from_builtins(value: object) -> AnyEvent:
    """An event from its JSON shape (a dict as a trace line has it), checked like a trace line
    (msgspec.ValidationError if it is not an event)."""
    event: AnyEvent = msgspec.convert(value, AnyEvent)
    return event


def to_builtins(event: Event) -> dict[str, Any]:
    """An event in its JSON shape: a dict as a trace line has it."""
    shape: dict[str, Any] = msgspec.to_builtins(event)
    return shape
