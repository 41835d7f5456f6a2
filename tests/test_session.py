"""The session's bounds: the live model is capped, while the trace keeps every event."""

from __future__ import annotations

import textwrap

from loopviz.session import Session, Target
from loopviz.trace import read_trace


def test_the_model_stops_at_its_cap_and_the_trace_keeps_everything(tmp_path):
    script = tmp_path / "busy.py"
    script.write_text(textwrap.dedent("""
        import asyncio

        async def main():
            for _ in range(500):
                await asyncio.sleep(0)
            print("done")

        asyncio.run(main())
        """))  # fmt: skip
    session = Session(Target(script, []), tmp_path / "t.jsonl", max_model_events=200)
    session.start()
    session.wait()
    assert session.model_full
    assert len(session.timeline.events) == 201  # the cap, and the end
    assert session.timeline.ended and session.timeline.events[-1]["ev"] == "end"
    trace = read_trace(tmp_path / "t.jsonl")
    assert len(trace.events) > 1_500
    assert [e["text"] for e in trace.events if e["ev"] == "output"] == ["done\n"]
