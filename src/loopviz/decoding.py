"""The parent's half of the wire: frames from the child decoded into typed events.

loopviz.wire says how the recorder lays events out in a frame; this module turns a frame body
back into the Structs of loopviz.events, validating it on the way. Only the parent imports it, so
the recorded program never loads the event definitions or builds these tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import msgspec

from loopviz import events, wire
from loopviz.events import AnyEvent
from loopviz.wire import NONE, WireError

_decoder = msgspec.msgpack.Decoder(list[Any])


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
_SPECIAL: dict[int, Callable[..., AnyEvent]] = {wire.SUSPEND: _suspend, wire.YIELD: _bare_yield}


def _makers() -> dict[int, tuple[Callable[..., AnyEvent], int]]:
    """Kind code -> (what makes its event from the values after the code, how many values the
    code and they take). A kind's Struct lists ``t`` and then the layout's fields in the same
    order (tests/test_events.py checks it), so most kinds are made straight from the values."""
    makers = {}
    for code, (name, fields) in wire.LAYOUTS.items():
        make = _SPECIAL.get(code) or _maker(events.KINDS[name])
        makers[code] = (make, len(fields) + 2)
    return makers


_MAKERS = _makers()
