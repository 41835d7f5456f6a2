"""The session's bounds: the live model is capped while the trace keeps every event, and a flood
the parent cannot keep up with holds the recorded loop rather than growing any buffer."""

from __future__ import annotations

import array
import asyncio
import fcntl
import os
import termios
import textwrap
import threading
import time

from conftest import recorded_loop
from loopviz import wire
from loopviz.decoding import decode_frame
from loopviz.recorder import watchdog, writer
from loopviz.session import Session, Target
from loopviz.trace import read_trace


def run_past_a_cap_of_200(tmp_path, steps: int, then: str) -> Session:
    """Record ``steps`` sleep(0) steps, then the statement ``then``, with the model capped."""
    script = tmp_path / "busy.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, time

        async def main():
            for _ in range({steps}):
                await asyncio.sleep(0)
            {then}

        asyncio.run(main())
        """))  # fmt: skip
    session = Session(Target(script, []), tmp_path / "t.jsonl", max_model_events=200)
    session.start()
    session.wait()
    return session


def test_the_model_stops_at_its_cap_and_the_trace_keeps_everything(tmp_path):
    session = run_past_a_cap_of_200(tmp_path, 500, 'print("done")')
    assert session.model_full
    assert len(session.timeline.events) == 201  # the cap, and the end
    assert session.timeline.ended and session.timeline.events[-1].ev == "end"
    trace = read_trace(tmp_path / "t.jsonl")
    assert len(trace.events) > 1_500
    assert [e.text for e in trace.events if e.ev == "output"] == ["done\n"]


def test_a_flood_the_parent_cannot_take_holds_the_loop_instead_of_growing_the_buffer(monkeypatch):
    """Nobody reads the event pipe: the loop thread sends a frame whenever its buffer passes
    MAX_BUFFERED, and its write waits while the pipe is full, holding the loop between two
    iterations; once the pipe is read again, every event arrives."""
    tasks, steps, limit = 500, 20, 20_000
    monkeypatch.setattr(writer, "MAX_BUFFERED", limit)
    monkeypatch.setattr(watchdog, "FLUSH_STALE_NS", 10**12)  # no frame but the loop's own
    read_end, write_end = os.pipe()
    recorder = writer.Recorder(write_end, 100_000_000, flush_interval=1000.0)
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # full after a frame or two
    sizes: list[int] = []  # the buffer's size at each frame the loop thread sent
    sending = threading.Event()
    drain = recorder.drain

    def loop_thread_drain() -> None:
        if threading.current_thread() is runner:
            sizes.append(len(recorder.events))
            sending.set()
        drain()

    recorder.drain = loop_thread_drain
    recorder.start()
    loop = recorded_loop(recorder)

    async def worker() -> None:
        for _ in range(steps):
            await asyncio.sleep(0)

    async def flood() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    runner = threading.Thread(target=loop.run_until_complete, args=(flood(),))
    runner.start()
    assert sending.wait(10), "the loop thread never sent a frame"
    pipe_size = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)
    deadline = time.monotonic() + 10
    while unread_bytes(read_end) < pipe_size and time.monotonic() < deadline:
        runner.join(0.01)
    assert runner.is_alive(), "the flood ran to its end with nobody reading its events"
    # held: the buffer was at most one loop iteration (a step of every task) past the limit
    one_iteration = tasks * 13
    assert sizes and max(sizes) <= limit + one_iteration

    chunks = []
    reader = threading.Thread(
        target=lambda: chunks.extend(iter(lambda: os.read(read_end, 1 << 16), b""))
    )
    reader.start()
    runner.join(30)
    recorder.finish(0, None)
    os.close(write_end)
    reader.join(30)
    loop.close()
    data = b"".join(chunks)
    resumes = 0
    while data:
        (length,) = wire.FRAME_HEADER.unpack(data[: wire.FRAME_HEADER.size])
        body, data = data[4 : 4 + length], data[4 + length :]
        resumes += sum(event.ev == "resume" for event in decode_frame(body)[1])
    assert resumes == tasks * (steps + 1) + 2  # every worker step, and flood()'s two


def test_without_a_live_view_the_model_is_built_when_the_script_ends(tmp_path):
    """``loopviz record``: while the script runs, events go to the trace file and the model is
    left alone; at its end the model holds what a live session's would."""
    script = tmp_path / "steps.py"
    script.write_text(textwrap.dedent("""
        import asyncio

        async def main():
            for _ in range(20):
                await asyncio.sleep(0.01)

        asyncio.run(main())
        """))  # fmt: skip
    sessions = []
    for live in (True, False):
        session = Session(Target(script, []), tmp_path / f"{live}.jsonl", live_model=live)
        session.start()
        modelled_while_running = 0
        while not session.finished:
            session.poll(timeout=0.02)
            if not session.finished:
                modelled_while_running = max(modelled_while_running, len(session.timeline.events))
        sessions.append((session, modelled_while_running))
    (live_session, live_running), (deferred, deferred_running) = sessions
    assert live_running > 0 and deferred_running == 0
    trace = read_trace(tmp_path / "False.jsonl")
    assert [e.ev for e in deferred.timeline.events] == [e.ev for e in trace.events]
    assert deferred.timeline.tasks.keys() == live_session.timeline.tasks.keys()
    assert deferred.timeline.ended and deferred.timeline.end_t == trace.events[-1].t


def unread_bytes(fd: int) -> int:
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def test_past_the_cap_the_lanes_stop_and_blocks_are_still_shown(tmp_path):
    session = run_past_a_cap_of_200(tmp_path, 300, "time.sleep(0.3)")
    timeline = session.timeline
    cut = timeline.detail_until
    assert session.model_full and cut is not None
    assert [b.code for b in timeline.blocks] == ["time.sleep(0.3)"]
    assert timeline.blocks[0].start > cut and timeline.blocks[0].end is not None
    for lane in [timeline.loop, *timeline.tasks.values()]:
        assert lane.current is None and max(lane.ends, default=cut) <= cut
    assert timeline.events[-1].ev == "end"
