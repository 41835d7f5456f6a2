"""The typed events: docs/trace-format.md describes exactly them, and the wire decodes into them."""

from __future__ import annotations

import re

import msgspec
import pytest

from conftest import REPO
from loopviz import events, wire
from loopviz.decoding import decode_frame
from loopviz.events import Wait

DOC = (REPO / "docs" / "trace-format.md").read_text()
ON_THE_WIRE_ONLY = {"hello"}  # the child's greeting: taken by the session, never in a trace


def documented_events() -> dict[str, set[str]]:
    """Kind -> fields, from the rows of the Events table."""
    section = DOC.split("## Events", 1)[1].split("### `waiting_on`", 1)[0]
    found: dict[str, set[str]] = {}
    rows = re.findall(r"^\| (`\w+`(?: / `\w+`)*) \| ([^|]*) \|", section, re.MULTILINE)
    for kinds, fields in rows[1:]:  # (not the table's head)
        for kind in re.findall(r"`(\w+)`", kinds):
            found[kind] = set(re.findall(r"`(\w+)`", fields))
    return found


def fields_of(kind: type[msgspec.Struct]) -> set[str]:
    return {field.name for field in msgspec.structs.fields(kind)}


def test_the_doc_lists_every_kind_and_field_and_nothing_else():
    defined = {name: fields_of(kind) - {"t"} for name, kind in events.KINDS.items()
               if name not in ON_THE_WIRE_ONLY}  # fmt: skip
    assert documented_events() == defined


def test_the_doc_lists_every_field_of_a_wait_and_nothing_else():
    section = DOC.split("### `waiting_on`", 1)[1].split("| `kind` | fields |", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert documented == [field.name for field in msgspec.structs.fields(Wait)]


def test_each_kind_lists_t_then_its_wire_layout_in_order():
    """decode_frame makes most events straight from the frame's values, in this order."""
    for code, (name, layout) in wire.LAYOUTS.items():
        if code not in (wire.SUSPEND, wire.YIELD):  # a suspend's wait is made of its fields
            assert tuple(f.name for f in msgspec.structs.fields(events.KINDS[name])) == (
                "t", *layout), name  # fmt: skip


def frame(*values) -> bytes:
    return wire.encode_frame([99, *values])[wire.FRAME_HEADER.size :]


def test_a_frame_decodes_into_typed_events_with_nulls_and_named_refs():
    watermark, decoded = decode_frame(frame(
        wire.CREATE, 10, 1, "Task-1", "main", wire.NONE, "a.py:3", False, 1, "",
        wire.SUSPEND, 12, 1, "sleep", "sleep 1s", wire.NONE, 1000, 999, "a.py:4", wire.NONE,
        wire.SUSPEND, 13, 1, "gather", "TaskGroup (2 left)", 5, wire.NONE, [2, 3], "", 70,
        wire.YIELD, 14, 1,
        wire.BLOCK, 15, wire.NONE, 1, 15, "a.py:9", "time.sleep(1)", "a.py:9 in f: x\nb.py:2", True,
        wire.THREAD_JOB, 16, "db", wire.NONE, "f()", wire.NONE,
    ))  # fmt: skip
    assert watermark == 99
    assert decoded == [
        events.Create(10, 1, "Task-1", "main", None, "a.py:3", False, 1, ""),
        events.Suspend(12, 1, Wait("sleep", "sleep 1s", deadline=1000, delay_ns=999,
                                   where="a.py:4")),  # fmt: skip
        events.Suspend(13, 1, Wait("gather", "TaskGroup (2 left)", obj=5, children=[2, 3],
                                   timeout=70)),  # fmt: skip
        events.Suspend(14, 1, events.BARE_YIELD_WAIT),
        events.Block(15, None, 1, 15, "a.py:9", "time.sleep(1)", ["a.py:9 in f: x", "b.py:2"],
                     True),  # fmt: skip
        events.ThreadJob(16, "db", None, "f()", None),
    ]
    assert decoded[2].waiting_on.in_task_group and not decoded[1].waiting_on.in_task_group


@pytest.mark.parametrize(
    "values",
    [(wire.RESUME,), (wire.RESUME, 5), (99, 5, 1), (wire.CREATE, 1, 2, "a")],
    ids=["no time", "no task", "unknown code", "short create"],
)
def test_a_frame_off_the_layouts_is_a_wire_error(values):
    with pytest.raises(wire.WireError, match="does not follow the event layouts"):
        decode_frame(frame(*values))


def test_events_are_frozen_and_keep_their_json_shape():
    event = events.from_builtins({"t": 3, "ev": "resume", "task": 1})
    with pytest.raises(AttributeError):
        event.t = 4  # type: ignore[misc]
    assert events.to_builtins(event) == {"ev": "resume", "t": 3, "task": 1}
    assert events.task_of(event) == 1 and events.task_of(events.Idle(3, 1)) is None
