"""Trace files: what is written reads back, and what is not a trace is refused clearly."""

from __future__ import annotations

import gzip
import json

import pytest

from loopviz.trace import TraceError, TraceWriter, read_trace

HEADER = {"scenario": "x.py", "python": "3.11.7", "loop": "asyncio", "created": "now"}
EVENTS = [
    {"t": 1, "ev": "create", "task": 1, "name": "a", "coro": "a", "parent": None, "where": ""},
    {"t": 5, "ev": "end", "exit_code": 0, "error": None},
]


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
    lines = [json.dumps({"format": "loopviz-trace", "version": 1}), json.dumps(EVENTS[0])]
    path.write_text("\n".join(lines) + '\n{"t": 9, "ev": "res')
    trace = read_trace(path)
    assert trace.events == EVENTS[:1] and trace.truncated


def test_gzip_cut_short_reads_what_survived(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    body = "\n".join(
        json.dumps(x) for x in [{"format": "loopviz-trace", "version": 1}, *EVENTS * 200]
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
