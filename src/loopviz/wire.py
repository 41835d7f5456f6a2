"""The event stream between the recorder (child) and the session (parent).

The recorder keeps events as one flat list of ints and strings, because a flat list holds no
per-event container objects and so never wakes the cyclic GC (docs/performance.md). This module is
the single place that knows how that flat list is laid out: which fields follow each kind code.
It is imported by both sides and imports nothing but msgspec and loopviz.events, so the child
stays light. The parent decodes each frame straight into the typed events of loopviz.events.

A frame on the pipe is a 4-byte big-endian length followed by a msgpack array:
``[watermark, kind, t, field, ..., kind, t, field, ...]``. The watermark promises that every event
with ``t`` below it has been sent, which lets the parent merge out-of-order threads into time order.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, get_args

import msgspec

from loopviz import events
from loopviz.events import AnyEvent

FRAME_HEADER = struct.Struct(">I")

# Kind code -> (trace kind name, field names after ``t``). The order of fields is the wire order.
LAYOUTS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("hello", ("t0", "python", "pid")),
    2: ("loop", ("impl", "unrecorded", "id", "thread")),
    3: ("create", ("task", "name", "coro", "parent", "where", "internal", "loop", "args")),
    4: ("resume", ("task",)),
    5: ("suspend", ("task", "kind", "label", "obj", "deadline", "ref", "where", "timeout")),
    6: ("done", ("task", "outcome", "detail")),
    7: ("block_begin", ("task", "start", "where", "code", "stack", "gil")),
    8: ("block", ("task", "start", "end", "where", "code", "stack", "gil")),
    9: ("thread_start", ("thread", "job", "task", "func")),
    10: ("thread_end", ("thread", "job", "task", "func")),
    11: ("output", ("stream", "text")),
    12: ("idle", ("start",)),
    13: ("rename", ("task", "name")),
    14: ("end", ("exit_code", "error")),
    15: ("ready", ("task", "cause")),
    16: ("unretrieved", ("task", "detail")),
    # A bare yield (asyncio.sleep(0)) with no timeout: a suspend on the wire's shortest form.
    17: ("suspend", ("task",)),
    18: ("entry", ("task", "func", "where")),
    19: ("thread_job", ("thread", "task", "func", "start")),
    20: ("unseen", ("count", "detail")),
    21: ("source", ("file", "path", "sha256")),
}
YIELD = 17
CODES: dict[str, int] = {name: code for code, (name, _fields) in LAYOUTS.items() if code != YIELD}

HELLO = CODES["hello"]
LOOP = CODES["loop"]
CREATE = CODES["create"]
RESUME = CODES["resume"]
SUSPEND = CODES["suspend"]
DONE = CODES["done"]
BLOCK_BEGIN = CODES["block_begin"]
BLOCK = CODES["block"]
THREAD_START = CODES["thread_start"]
THREAD_END = CODES["thread_end"]
OUTPUT = CODES["output"]
IDLE = CODES["idle"]
RENAME = CODES["rename"]
END = CODES["end"]
READY = CODES["ready"]
UNRETRIEVED = CODES["unretrieved"]
ENTRY = CODES["entry"]
THREAD_JOB = CODES["thread_job"]
UNSEEN = CODES["unseen"]
SOURCE = CODES["source"]

NONE = -1  # an absent int field on the wire (no parent task, no deadline, no object)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list[Any])


class WireError(ValueError):
    """The stream from the child is not what a loopviz recorder writes."""


def encode_frame(flat: list[Any]) -> bytes:
    """``flat`` is the watermark followed by the events, in their layouts."""
    body = _encoder.encode(flat)
    return FRAME_HEADER.pack(len(body)) + body


def decode_frame(body: bytes | bytearray) -> tuple[int, list[AnyEvent]]:
    """Turn one frame body into its watermark and its events, typed (loopviz.events)."""
    try:
        flat = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise WireError(f"undecodable frame: {exc}") from None
    makers = _MAKERS
    decoded: list[AnyEvent] = []
    append = decoded.append
    i, n = 1, len(flat)
    try:
        watermark = flat[0]
        while i < n:
            make, width = makers[flat[i]]
            end = i + width
            if end > n:
                raise IndexError
            append(make(*flat[i + 1 : end]))
            i = end
    except (KeyError, IndexError, TypeError):
        raise WireError("frame does not follow the event layouts") from None
    return watermark, decoded


def _suspend(t: int, task: int, kind: str, label: str, obj: int, deadline: int, ref: Any,
             where: str, timeout: int) -> events.Suspend:  # fmt: skip
    """A suspend's wait, its generic ``ref`` named for its kind (see _REF_NAMES)."""
    refs = {_REF_NAMES[kind]: ref} if ref != NONE and kind in _REF_NAMES else {}
    wait = events.Wait(kind, label, _nullable(obj), _nullable(deadline), where=where,
                       timeout=_nullable(timeout), **refs)  # fmt: skip
    return events.Suspend(t, task, wait)


def _bare_yield(t: int, task: int) -> events.Suspend:
    return events.Suspend(t, task, events.BARE_YIELD_WAIT)


def _nullable(value: Any) -> Any:
    return None if value == NONE else value


def _stack(joined: str) -> list[str]:
    return joined.split("\n") if joined else []


def _maker(kind: type[events.Event]) -> Callable[..., AnyEvent]:
    """What makes an event of a kind whose fields are sent in its layout's order: the Struct
    itself, or, where some field is sent in another form, a function that converts those first
    (NONE for null in the fields that may be null, such as a create's parent or a callback's
    block's task; a block's stack sent as one string of lines)."""
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    for k, field in enumerate(msgspec.structs.fields(kind)):
        if field.name == "stack":
            converters.append((k, _stack))
        elif field.name in _SENT_AS_NONE and type(None) in get_args(field.type):
            converters.append((k, _nullable))
    if not converters:
        return kind  # type: ignore[return-value]  # (a member of AnyEvent)

    def make(*values: Any) -> AnyEvent:
        fields = list(values)
        for k, convert in converters:
            fields[k] = convert(fields[k])
        return kind(*fields)  # type: ignore[return-value]  # (a member of AnyEvent)

    return make


# What the suspend event's generic ``ref`` field means for each wait kind.
_REF_NAMES = {
    "task": "target", "gather": "children", "thread": "job", "sleep": "delay_ns", "process": "pid",
}  # fmt: skip
# The fields the recorder sends as NONE when they have no value (read as null).
_SENT_AS_NONE = frozenset({"parent", "task", "start"})
_SPECIAL: dict[int, Callable[..., AnyEvent]] = {SUSPEND: _suspend, YIELD: _bare_yield}


def _makers() -> dict[int, tuple[Callable[..., AnyEvent], int]]:
    """Kind code -> (what makes its event from the values after the code, how many values the
    code and they take). A kind's Struct lists ``t`` and then the layout's fields in the same
    order (tests/test_events.py checks it), so most kinds are made straight from the values."""
    makers = {}
    for code, (name, fields) in LAYOUTS.items():
        make = _SPECIAL.get(code) or _maker(events.KINDS[name])
        makers[code] = (make, len(fields) + 2)
    return makers


_MAKERS = _makers()
