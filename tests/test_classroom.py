"""What a teacher relies on in front of a class: the app survives NO_COLOR, a crash of the
viewer never exits 0 nor loses the recording, and the screen never contradicts itself."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conftest import REPO
from loopviz import cli
from loopviz.session import Session, Target
from loopviz.trace import load_timeline, read_trace
from loopviz.ui.app import LoopvizApp
from loopviz.ui.timeline import TimelineView

DATA = REPO / "tests" / "data"


def screen_text(app) -> str:
    """Every character the screen shows now, row by row."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def test_no_color_runs_and_draws_the_lanes(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    theme = cli._theme(cli._run_parser().parse_args(["x.py"]))
    assert theme.name == "ascii"
    _trace, timeline = load_timeline(DATA / "blocking.jsonl")
    app = LoopvizApp(timeline=timeline, title="blocking.py", theme=theme)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.no_color  # Textual's monochrome filter is on: every row goes through it
        await pilot.press("home", "b", "right", "plus", "question_mark", "escape")
        await pilot.pause()
        assert "X reporter" in screen_text(app)
        await pilot.press("q")
    assert app.return_code == 0


SLOW = """
import asyncio

async def main():
    for i in range(200):
        print("tick", i, flush=True)
        await asyncio.sleep(0.02)

asyncio.run(main())
"""


def test_a_crash_of_the_viewer_exits_non_zero_and_keeps_the_trace(tmp_path: Path, monkeypatch,
                                                                  capsys):  # fmt: skip
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(SLOW))
    trace = tmp_path / "slow.jsonl"
    session = Session(Target(script, []), trace)
    app = LoopvizApp(session)
    redraw = LoopvizApp._redraw

    def redraw_then_break(self) -> None:
        redraw(self)
        if len(self.timeline.events) > 20:
            raise RuntimeError("a bug in the viewer")

    monkeypatch.setattr(LoopvizApp, "_redraw", redraw_then_break)
    status = cli.run_live(app, session, "slow.py", headless=True)
    assert status == 1
    err = capsys.readouterr().err
    assert "the viewer crashed" in err and str(trace) in err
    events = read_trace(trace).events
    assert any(e["ev"] == "output" for e in events) and events[-1]["ev"] == "end"
    assert session.process.poll() is not None  # the script was stopped, not left running


def test_a_crash_before_recording_names_no_trace(tmp_path: Path, capsys):
    never = tmp_path / "never.jsonl"
    session = Session(Target(tmp_path / "missing.py", []), never)

    class Broken(LoopvizApp):
        def compose(self):  # fails before the script is started
            raise RuntimeError("a bug")

    status = cli.run_live(Broken(session), session, "missing.py", headless=True)
    err = capsys.readouterr().err
    assert status == 1
    assert "trace saved" not in err and "nothing was recorded" in err and not never.exists()


def lane_glyphs(app) -> dict[str, str]:
    """Each lane's label -> the state glyph before it, as the timeline draws them now."""
    view = app.query_one(TimelineView)
    gutter = view.painter.gutter
    glyphs = {}
    for y in range(2, view.size.height):
        title = view.render_line(y).text[:gutter].strip()
        if title and title[0] != "⚙":
            glyphs[title[2:]] = title[0]
    return glyphs


def panel(app, selector: str) -> str:
    return str(app.query_one(selector).content)


async def check_every_event_agrees(name: str) -> int:
    """Step through a whole trace; at each event the header, banner, explanation, loop panel and
    lane icons must tell one story. Returns how many events were inside a block."""
    _trace, timeline = load_timeline(DATA / f"{name}.jsonl")
    app = LoopvizApp(timeline=timeline, title=f"{name}.py")
    blocked_events = 0
    async with app.run_test(size=(160, 45)):
        view = app.query_one(TimelineView)
        for index in range(len(timeline.events)):
            app.replay.seek_index(index)
            app.refresh_screen()
            moment = app.moment
            status, banner = panel(app, "#status"), panel(app, "#banner")
            loop_panel, words = panel(app, "#loop-panel"), panel(app, "#explain")
            glyphs = lane_glyphs(app)
            loop_glyph = view.render_line(1).text[0]
            shown = app.query_one("#banner").has_class("visible")
            where = f"{name} event {index} at {moment.t}: {words!r}"
            if moment.block is None:
                assert not shown and "BLOCKED" not in status and loop_glyph != "■", where
                present = ("blocks the loop", "is starved", "are starved", "loop is blocked")
                assert not any(words_ in words for words_ in present), where  # (past tense ok)
                assert f" {moment.status} " in status or "ended with" in status, where
                assert loop_panel.splitlines()[1].startswith(moment.status), where
                assert "■" not in glyphs.values(), where
                continue
            blocked_events += 1
            holder = moment.holder
            assert shown and "BLOCKED" in status and loop_glyph == "■", where
            assert f"blocked by {holder}" in loop_panel and f"{holder} holds the loop" in banner
            assert glyphs[holder] == "■", where
            starved = {label for label, glyph in glyphs.items() if glyph == "●"}
            named = set(banner.split("starved: ")[1].split(", ")) if "starved: " in banner else (
                set()
            )  # fmt: skip
            assert starved == named == set(moment.starved_labels), where
            if "starved: " in words:  # the explanation names the same tasks, in the same number
                assert set(words.split("starved: ")[1].split(", ")) == named, where
            for label in named:
                assert label in loop_panel.split("ready queue: ")[1], where
        await app.run_action("quit_session")
    return blocked_events


async def test_banner_explanation_panel_and_icons_agree_at_every_event_of_blocking():
    assert await check_every_event_agrees("blocking") >= 3  # and some were inside the block


async def test_banner_explanation_panel_and_icons_agree_at_every_event_of_taskgroup():
    await check_every_event_agrees("taskgroup")


def cursor_in_view(app) -> bool:
    view = app.query_one(TimelineView).viewport()
    return view.t_start <= app.replay.time < view.t_end


async def zoom_in_at_start(pilot) -> None:
    await pilot.press("home", "plus", "plus", "plus")
    view = pilot.app.query_one(TimelineView)
    assert not view.fit_all and cursor_in_view(pilot.app)


@pytest.mark.parametrize("keys", [
    ("right",) * 60, ("right_square_bracket",) * 12, ("end",), ("b",), ("shift+right",) * 30,
    ("k", "k", "k"), ("end", "left"), ("end", "left_square_bracket"), ("end", "home"),
    ("m", "end", "N"), ("end", "shift+left"),
])  # fmt: skip
async def test_a_zoomed_view_follows_the_cursor_for_every_key_that_moves_it(keys):
    _trace, timeline = load_timeline(DATA / "blocking.jsonl")
    app = LoopvizApp(timeline=timeline, title="blocking.py")
    async with app.run_test(size=(120, 36)) as pilot:
        await zoom_in_at_start(pilot)
        await pilot.press("down")  # a task for shift+arrows: fast
        start = app.replay.time
        for key in keys:
            await pilot.press(key)
            assert cursor_in_view(app), f"{key}: the cursor left the view"
        assert (app.replay.time == start) is (keys in (("end", "home"), ("m", "end", "N")))
        line = app.query_one(TimelineView).render_line(0).text
        assert app.lane_theme.cursor_glyph in line  # the cursor is drawn, not only in range
        await pilot.press("q")


async def test_a_zoomed_view_follows_the_cursor_while_playing():
    _trace, timeline = load_timeline(DATA / "blocking.jsonl")
    app = LoopvizApp(timeline=timeline, title="blocking.py")
    async with app.run_test(size=(120, 36)) as pilot:
        await zoom_in_at_start(pilot)
        await pilot.press("greater_than_sign", "greater_than_sign", "greater_than_sign")  # 10x
        width = app.query_one(TimelineView).viewport()
        await pilot.press("space")
        for _ in range(40):  # each tick moves the cursor 1/30 s * 10 = 0.33 s of the run
            app._play_tick()
            assert cursor_in_view(app)
        assert app.replay.time > width.t_end  # it did go past the first view
        await pilot.press("q")
