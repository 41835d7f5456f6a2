"""Trace files: what is written reads back, and what is not a trace is refused clearly."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import REPO, typed
from loopviz import events
from loopviz.trace import TraceError, TraceWriter, load_timeline, read_trace

HEADER = {"scenario": "x.py", "python": "3.11.7", "loop": "asyncio", "created": "now"}
SHAPES = [  # as the file has them
    {"t": 1, "ev": "create", "task": 1, "name": "a", "coro": "a", "parent": None, "where": ""},
    {"t": 5, "ev": "end", "exit_code": 0, "error": None},
]
EVENTS = typed(SHAPES)


@pytest.mark.parametrize("name", ["t.jsonl", "t.jsonl.gz"])
def test_round_trip(tmp_path, name):
    writer = TraceWriter(tmp_path / name, HEADER)
    writer.write(EVENTS)
    writer.close()
    trace = read_trace(tmp_path / name)
    assert trace.header == {"format": "loopviz-trace", "version": 1, **HEADER}
    assert trace.events == EVENTS
    assert not trace.truncated


def test_truncated_last_line_is_accepted_with_a_notice(tmp_path):
    path = tmp_path / "cut.jsonl"
    lines = [json.dumps({"format": "loopviz-trace", "version": 1}), json.dumps(SHAPES[0])]
    path.write_text("\n".join(lines) + '\n{"t": 9, "ev": "res')
    trace = read_trace(path)
    assert trace.events == EVENTS[:1] and trace.truncated


def test_gzip_cut_short_reads_what_survived(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    body = "\n".join(
        json.dumps(x) for x in [{"format": "loopviz-trace", "version": 1}, *SHAPES * 200]
    )
    data = gzip.compress(body.encode())
    path.write_bytes(data[: len(data) // 2])
    trace = read_trace(path)
    assert trace.truncated and 0 < len(trace.events) < 400


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a loopviz trace"),
        (b'{"hello": "world"}\n', "not a loopviz trace"),
        (b'{"format": "loopviz-trace", "version": 2}\n', "version 2"),
    ],
)
def test_refuses_what_is_not_a_readable_trace(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceError, match=message):
        read_trace(path)


def write_lines(path, *lines: str) -> None:
    path.write_text("\n".join([json.dumps({"format": "loopviz-trace", "version": 1}), *lines]))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"t": 2, "ev": "resume"}', "object missing required field `task`"),
        ('{"t": 2, "ev": "resume", "task": "1"}', "expected `int`, got `str` in `task`"),
        ('{"t": -2, "ev": "resume", "task": 1}', "expected `int` >= 0 in `t`"),
        ("[]", "expected `object`, got `array`"),
        ("null", "expected `object`, got `null`"),
        ("{}", "object missing required field `ev`"),
        ('{"t": 2, "ev": 7}', "expected `str` in `ev`"),
        ('{"t": 2, "ev": "suspend", "task": 1, "waiting_on": {"kind": "gather", "label": "g", '
         '"children": [1, "2"]}}', "expected `int`, got `str` in `waiting_on.children[1]`"),
        ("{not json", "is not JSON"),
    ],
)
def test_a_damaged_line_stops_the_reading_there_with_one_sentence(tmp_path, line, problem):
    path = tmp_path / "t.jsonl"
    write_lines(path, json.dumps(SHAPES[0]), line, json.dumps(SHAPES[1]))
    with pytest.raises(TraceError) as raised:
        read_trace(path)
    message = str(raised.value)
    assert message.startswith(f"{path} line 3 ") and problem in message
    assert "\n" not in message and message.endswith(".")  # one sentence
    with pytest.raises(TraceError, match="line 3"):
        load_timeline(path)


def test_the_timeline_keeps_what_came_before_a_damaged_line(tmp_path):
    from loopviz.trace import TraceLoader

    path = tmp_path / "t.jsonl"
    write_lines(path, json.dumps(SHAPES[0]), '{"t": 3, "ev": "resume", "task": 1}', "[]",
                json.dumps(SHAPES[1]))  # fmt: skip
    loader = TraceLoader(path)
    loader.load()
    assert loader.error is not None and "line 4" in loader.error
    assert [event.ev for event in loader.timeline.events] == ["create", "resume"]
    assert loader.trace.truncated


def test_a_kind_from_a_later_version_is_skipped(tmp_path):
    """docs/trace-format.md: readers ignore kinds and fields they do not know."""
    path = tmp_path / "t.jsonl"
    later = {"t": 2, "ev": "teleport", "task": 1, "to": "mars"}
    extra_field = {**SHAPES[1], "cpu": 3}
    write_lines(path, json.dumps(SHAPES[0]), json.dumps(later), json.dumps(extra_field))
    assert read_trace(path).events == EVENTS


@pytest.mark.parametrize("name", ["blocking", "gather", "offload", "taskgroup", "warehouse",
                                  "web_server"])  # fmt: skip
def test_the_traces_in_tests_data_load_and_write_back_as_they_were(tmp_path, name):
    """Old traces still load (fields added since take their defaults), and a trace written from
    typed events has the shape of the file, fields of later versions aside."""
    source = REPO / "tests" / "data" / f"{name}.jsonl"
    trace = read_trace(source)
    lines = source.read_text().splitlines()[1:]
    assert len(trace.events) == len(lines) and not trace.truncated
    for event, line in zip(trace.events, lines, strict=True):
        shape = json.loads(line)
        written = events.to_builtins(event)
        assert {key: written[key] for key in shape} == shape
