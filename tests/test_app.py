"""The Textual app, driven by Pilot: lanes appear, the block shows live, keys do what they say."""

from __future__ import annotations

import textwrap
from pathlib import Path

from conftest import REPO, wait_until
from loopviz.runs import LiveRecording, TraceFile
from loopviz.session import Session, Target
from loopviz.trace import load_timeline
from loopviz.ui.app import LoopvizApp
from loopviz.ui.timeline import TimelineView

BLOCKING = """
import asyncio, time

async def ticker():
    for _ in range(40):
        await asyncio.sleep(0.02)

async def blocker():
    await asyncio.sleep(0.1)
    time.sleep(0.8)

async def main():
    await asyncio.gather(
        asyncio.create_task(ticker(), name="ticker"),
        asyncio.create_task(blocker(), name="blocker"),
    )

asyncio.run(main())
"""


def screen_lines(view: TimelineView) -> list[str]:
    return [view.render_line(y).text for y in range(view.size.height)]


async def test_live_run_shows_lanes_and_the_block_as_it_happens(tmp_path: Path):
    script = tmp_path / "blocky.py"
    script.write_text(textwrap.dedent(BLOCKING))
    session = Session(Target(script, []), tmp_path / "blocky.jsonl")
    app = LoopvizApp(LiveRecording(session))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.moment.block is not None
                         and app.moment.block.where)  # fmt: skip
        await pilot.pause(0.1)
        banner = str(app.query_one("#banner").content)
        assert "BLOCKED" in banner and "time.sleep(0.8) at blocky.py:10" in banner
        assert "starved: ticker" in banner
        view = app.query_one(TimelineView)
        lines = screen_lines(view)
        assert lines[1].startswith("■ event loop")
        assert any(line.startswith("■ blocker") for line in lines)
        assert any("ticker" in line[:18] for line in lines)

        await wait_until(pilot, lambda: session.finished)
        await pilot.pause(0.1)
        assert not app.query_one("#banner").has_class("visible")
        lines = screen_lines(app.query_one(TimelineView))
        assert "BLOCKED" in lines[1]  # the band (and its label) stays on the finished timeline
        assert lines[1].startswith("✔ event loop")
        await pilot.press("q")
    assert session.exit_code == 0


async def test_arrow_keys_select_lanes_and_the_panel_follows():
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py", python="3.11.7"))
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one("#task-panel")
        assert str(panel.content).startswith("main")
        await pilot.press("down", "down")
        assert str(panel.content).startswith("medium")
        assert "waiting on" not in str(panel.content)  # it is done: it waits on nothing
        assert "returned" in str(panel.content)
        await pilot.press("up")
        assert str(panel.content).startswith("fast")
        lines = screen_lines(app.query_one(TimelineView))
        assert "BLOCKED 2 s" in lines[1]
        await pilot.press("q")


async def test_filter_hide_finished_group_help_and_event_log_keys():
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py", python="3.11.7"))
    async with app.run_test(size=(120, 36)) as pilot:
        view = app.query_one(TimelineView)

        def names() -> list[str]:
            return [timeline.tasks[i].label for i in view.lane_ids()]

        assert names() == ["main", "fast", "medium", "slow", "reporter"]
        await pilot.press("slash", "m", "e", "d")
        assert names() == ["medium"]
        await pilot.press("escape")
        assert names() == ["main", "fast", "medium", "slow", "reporter"]
        await pilot.press("g")
        assert [indent for _lane, indent in view._rows] == [0, 1, 1, 1, 1]
        assert view.render_line(3).text.startswith("  ✔ fast")
        await pilot.press("g", "home", "right", "right", "right", "right", "right", "right")
        await pilot.press("h")  # at the start nothing has finished yet: all lanes stay
        assert names() == ["main", "fast", "medium", "slow", "reporter"]
        await pilot.press("end")
        assert names() == []  # every task is done by the end
        await pilot.press("h", "e")
        log = app.query_one("#events")
        assert log.display and not app.query_one("#output").display
        assert "the program ends with exit status 0" in log.lines[-1].text
        await pilot.press("question_mark")
        assert "What the lanes show" in str(app.screen.query_one("#legend").content)
        await pilot.press("escape")
        assert app.screen.query(TimelineView)
        await pilot.press("q")


async def test_zooming_a_live_run_stops_following_and_f_resumes(tmp_path):
    script = tmp_path / "ticks.py"
    script.write_text(textwrap.dedent("""
        import asyncio

        async def main():
            for _ in range(60):
                await asyncio.sleep(0.05)

        asyncio.run(main())
        """))  # fmt: skip
    session = Session(Target(script, []), tmp_path / "ticks.jsonl")
    app = LoopvizApp(LiveRecording(session))
    async with app.run_test(size=(120, 36)) as pilot:
        view = app.query_one(TimelineView)
        await wait_until(pilot, lambda: app.source.now() > 500_000_000)
        # Actions, not key presses: Pilot waits for a busy live app to go idle before a press.
        view.action_zoom(0.5)
        assert not view.following and not view.fit_all and app.moment.view.live
        start = view.viewport().t_start
        await pilot.pause(0.3)
        assert view.viewport().t_start == start  # the view stays put while the run goes on
        view.action_follow()
        await pilot.pause(0.2)
        view_now = view.viewport()
        assert view.following and view_now.t_end >= app.source.now() - view_now.ns_per_cell
        app.action_quit_session()
        await wait_until(pilot, lambda: session.finished)


async def test_zoom_and_pan_keys_change_the_stretch_of_time_shown():
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"))
    async with app.run_test(size=(120, 36)) as pilot:
        view = app.query_one(TimelineView)
        whole = view.viewport()
        await pilot.press("plus")
        zoomed = view.viewport()
        assert zoomed.ns_per_cell == whole.ns_per_cell / 2
        await pilot.press("pagedown")
        assert view.viewport().t_start > zoomed.t_start
        await pilot.press("minus", "0")
        assert view.viewport() == whole
        await pilot.press("q")


async def test_a_panel_sized_by_its_words_follows_their_number_of_lines():
    """The task panel's height follows the number of lines it says as the selection moves (a
    panel's words update it without a layout of the screen only when they take the same room)."""
    _trace, timeline = load_timeline(REPO / "tests" / "data" / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py", python="3.11.7"))
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one("#task-panel")
        seen = {}
        for key in ("home", "down", "down", "down", "down", "end", "up", "up", "up", "up"):
            await pilot.press(key)
            await pilot.pause()
            lines = len(str(panel.content).splitlines())
            seen.setdefault(lines, set()).add(panel.size.height)
        assert len(seen) > 1  # (the walk met words of different lengths)
        assert all(len(heights) == 1 for heights in seen.values())
        assert sorted(seen) == sorted(seen, key=lambda lines: seen[lines].pop())
        await pilot.press("q")
