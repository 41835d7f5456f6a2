"""The event stream between the recorder (child) and the session (parent).

The recorder keeps events as one flat list of ints and strings, because a flat list holds no
per-event container objects and so never wakes the cyclic GC (docs/performance.md). This module is
the single place that knows how that flat list is laid out: which fields follow each kind code.
It is imported by both sides and imports nothing but msgspec, so the child stays light; the
parent's half, frames decoded into the typed events of loopviz.events, is loopviz.decoding.

A frame on the pipe is a 4-byte big-endian length followed by a msgpack array:
``[watermark, kind, t, field, ..., kind, t, field, ...]``. The watermark promises that every event
with ``t`` below it has been sent, which lets the parent merge out-of-order threads into time order.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

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


class WireError(ValueError):
    """The stream from the child is not what a loopviz recorder writes."""


def encode_frame(flat: list[Any]) -> bytes:
    """``flat`` is the watermark followed by the events, in their layouts."""
    body = _encoder.encode(flat)
    return FRAME_HEADER.pack(len(body)) + body
