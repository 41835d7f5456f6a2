"""What a teacher relies on in front of a class: the app survives NO_COLOR, a crash of the
viewer never exits 0 nor loses the recording, and the screen never contradicts itself."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, live_session, typed
from loopviz import cli
from loopviz.runs import LiveRecording, TraceFile
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
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"), theme=theme)
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
    session = live_session(tmp_path, SLOW, "slow.py")
    trace = session.trace_path
    app = LoopvizApp(LiveRecording(session))
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
    assert any(e.ev == "output" for e in events) and events[-1].ev == "end"
    assert session.process.poll() is not None  # the script was stopped, not left running


def test_a_crash_before_recording_names_no_trace(tmp_path: Path, capsys):
    never = tmp_path / "never.jsonl"
    session = Session(Target(tmp_path / "missing.py", []), never)

    class Broken(LoopvizApp):
        def compose(self):  # fails before the script is started
            raise RuntimeError("a bug")

    status = cli.run_live(Broken(LiveRecording(session)), session, "missing.py", headless=True)
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
    app = LoopvizApp(TraceFile(timeline, title=f"{name}.py"))
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
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"))
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
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"))
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


async def test_lesson_mode_shows_watch_for_and_k_walks_the_key_moments():
    from loopviz.catalogue import find

    _trace, timeline = load_timeline(DATA / "blocking.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="blocking.py"), scenario=find("blocking"))
    async with app.run_test(size=(120, 36)) as pilot:
        watch = app.query_one("#watch")
        assert watch.display and "every lane stops at once" in str(watch.content)
        await pilot.press("home", "k")
        words = panel(app, "#explain")
        assert "reporter blocks the loop" in words and "KEY MOMENT (block)" in words
        assert "Why it matters" in words and app.moment.block is not None
        await pilot.press("k")
        assert "KEY MOMENT (end)" in panel(app, "#explain")
        assert "the program ends" in panel(app, "#explain")
        await pilot.press("k")  # round again to the first
        assert "KEY MOMENT (block)" in panel(app, "#explain")
        await pilot.press("right")  # off the key moment: its words go
        assert "KEY MOMENT" not in panel(app, "#explain")
        await pilot.press("w")
        assert not watch.display  # dismissed
        await pilot.press("q")


def test_key_moments_of_taskgroup_name_the_exception_and_the_exception_group():
    from loopviz.replay import Replay

    _trace, timeline = load_timeline(DATA / "taskgroup.jsonl")
    replay = Replay(timeline)
    kinds = [(k.kind, timeline.events[k.index].ev) for k in replay.key_moments()]
    assert kinds == [("exception", "done"), ("end", "end")]
    words = []
    for index in range(len(timeline.events)):
        replay.seek_index(index)
        words.append(replay.explain())
    said = "\n".join(words)
    assert "flaky raises ConnectionError: flaky: lost the connection" in said
    assert "main is ready (flaky in its TaskGroup raised: the group cancels the others)" in said
    assert "steady-1 resumes only to be cancelled" in said
    assert "main resumes: flaky in its TaskGroup raised and the others are cancelled" in said
    assert "raises ExceptionGroup([ConnectionError: flaky: lost the connection]) in main" in said
    assert "TaskGroup (3 left) is done" not in said


def labelled(events: list[dict]):
    from loopviz.model import Timeline

    timeline = Timeline()
    timeline.add_events(typed(events))
    return timeline


def create(task: int, coro: str, args: str = "", name: str = "") -> dict:
    return {"t": task, "ev": "create", "task": task, "name": name or f"Task-{task}", "coro": coro,
            "parent": None, "where": "x.py:1", **({"args": args} if args else {})}  # fmt: skip


def test_every_lane_has_a_label_that_tells_it_apart():
    timeline = labelled([
        create(1, "download", "'a.com', 2"), create(2, "download", "'b.com', 2"),
        create(3, "handle"), create(4, "handle"), create(5, "handle"),
        create(6, "RequestResponseCycle.run_asgi"), create(7, "RequestResponseCycle.run_asgi"),
        {"t": 8, "ev": "entry", "task": 6, "func": "read_item", "where": "app.py:3"},
        {"t": 8, "ev": "entry", "task": 7, "func": "write_item", "where": "app.py:9"},
        create(9, "work", name="reporter"), create(10, "ticker", "1"), create(11, "ticker", "1"),
    ])  # fmt: skip  (a kind this version does not know never gets here: the reader skips it)
    labels = [lane.label for lane in timeline.tasks.values()]
    assert labels == [
        "download('a.com', 2)", "download('b.com', 2)", "handle #1", "handle #2", "handle #3",
        "run_asgi → read_item", "run_asgi → write_item", "reporter", "ticker(1) #1",
        "ticker(1) #2",
    ]  # fmt: skip
    assert len(set(labels)) == len(labels)


def test_threads_get_readable_labels_and_thread_jobs_are_drawn():
    from loopviz.model import thread_label

    assert thread_label("asyncio_0") == "worker 1"
    assert thread_label("ThreadPoolExecutor-1_2") == "pool 2 worker 3"
    assert thread_label("uvicorn-reader") == "uvicorn-reader"
    timeline = labelled([
        create(1, "handler"),
        {"t": 50, "ev": "thread_job", "thread": "db-pool", "task": 1, "func": "query",
         "start": 20},
        {"t": 90, "ev": "thread_job", "thread": "db-pool", "task": None, "func": "ping",
         "start": None},
        {"t": 95, "ev": "unseen", "count": 3, "detail": "tasks made before loopviz started"},
    ])  # fmt: skip
    lane = timeline.threads["db-pool"]
    assert [(s.start, s.end, s.label) for s in lane.spans] == [
        (20, 50, "query ← handler"), (90, 90, "ping")]  # fmt: skip
    assert timeline.unseen[0].count == 3


def test_a_block_in_c_code_holding_the_gil_is_said_in_plain_words():
    from loopviz.replay import Replay

    timeline = labelled([
        create(1, "crunch"),
        {"t": 10, "ev": "resume", "task": 1},
        {"t": 300_000_000, "ev": "block", "task": 1, "start": 10, "end": 300_000_000,
         "where": "app.py:7", "code": "numpy.linalg.inv(m)", "stack": [], "gil": True},
        {"t": 300_000_000, "ev": "done", "task": 1, "outcome": "returned", "detail": "None"},
    ])  # fmt: skip
    replay = Replay(timeline)
    replay.seek_time(200_000_000)
    words = replay.explain()
    assert "inside a C call that held the GIL" in words and "numpy.linalg.inv(m)" in words
    assert "a C call holding the GIL" in replay.moment().headline
    assert "no sample" not in words + replay.moment().headline


@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
async def test_ascii_puts_only_ascii_on_screen(size):
    from loopviz.catalogue import find
    from loopviz.painter import ASCII_THEME

    _trace, timeline = load_timeline(DATA / "offload.jsonl")  # a worker thread, µs durations
    app = LoopvizApp(TraceFile(timeline, title="offload.py"), theme=ASCII_THEME,
                     scenario=find("offload"))  # fmt: skip
    async with app.run_test(size=size) as pilot:
        screens = []
        for keys in [(), ("home", "k"), ("right",) * 30, ("plus", "plus", "b"), ("m",),
                     ("space",), ("e",), ("slash", "x"), ("escape", "question_mark")]:  # fmt: skip
            await pilot.press(*keys)
            await pilot.pause()
            screens.append(screen_text(app))
        for text in screens:
            odd = sorted({ch for ch in text if not ch.isascii()})
            assert not odd, f"not ASCII: {odd}"
        assert "T worker 1" in "\n".join(screens)  # the thread lane, labelled for people
        await pilot.press("escape", "q")


async def test_ctrl_c_stops_a_live_run_quits_and_keeps_the_trace(tmp_path: Path):
    from conftest import wait_until

    session = live_session(tmp_path, SLOW, "slow.py")
    trace = session.trace_path
    app = LoopvizApp(LiveRecording(session))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: len(session.timeline.outputs) >= 3)
        await pilot.press("ctrl+c")
        await wait_until(pilot, lambda: session.finished)
        await wait_until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0
    assert "Stopping the scenario" in app.notices[-1]
    events = read_trace(trace).events
    assert events[-1].ev == "end" and any(e.ev == "output" for e in events)
    assert len(session.timeline.outputs) < 200  # stopped early, not run to its end


FOREVER = """
import asyncio

async def main():
    while True:
        await asyncio.sleep(0.05)

asyncio.run(main())
"""


def test_sigterm_ends_the_live_app_in_a_terminal_and_keeps_the_trace(tmp_path: Path):
    """The real app in a pseudo-terminal: SIGTERM stops the script, closes the trace, exits."""
    import os
    import pty
    import signal
    import subprocess
    import sys
    import threading
    import time

    from test_share import _alive, _children

    script = tmp_path / "forever.py"
    script.write_text(textwrap.dedent(FOREVER))
    trace = tmp_path / "forever.jsonl"
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "LINES": "30", "TERM": "xterm-256color"}
    app = subprocess.Popen([sys.executable, "-m", "loopviz", "-o", str(trace), str(script)],
                           stdin=slave, stdout=slave, stderr=slave, env=env)  # fmt: skip
    os.close(slave)

    def drain() -> None:  # read the screen as a terminal would, so the app never blocks
        with contextlib.suppress(OSError):
            while os.read(master, 65536):
                pass

    threading.Thread(target=drain, daemon=True).start()
    try:
        deadline = time.monotonic() + 20
        while not [p for p in _children(app.pid) if _alive(p)]:
            assert time.monotonic() < deadline, "the script never started"
            time.sleep(0.1)
        scripts = [p for p in _children(app.pid) if _alive(p)]
        time.sleep(0.5)
        app.send_signal(signal.SIGTERM)
        assert app.wait(timeout=15) is not None
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in scripts):
            assert time.monotonic() < deadline, "the script outlived the app"
            time.sleep(0.1)
    finally:
        if app.poll() is None:
            app.kill()
        os.close(master)
    events = read_trace(trace).events
    assert events[0].ev != "end" and events[-1].ev == "end"


async def test_marks_are_drawn_on_the_time_axis(tmp_path: Path):
    import shutil

    trace = tmp_path / "blocking.jsonl"
    shutil.copy(DATA / "blocking.jsonl", trace)
    _trace, timeline = load_timeline(trace)
    app = LoopvizApp(TraceFile(timeline, title="blocking.py", trace_path=trace))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("home", "b", "m", "end")
        axis = app.query_one(TimelineView).render_line(0).text
        assert axis.count("◆") == 1
        widget = app.query_one(TimelineView)
        mark_cell = widget.viewport().cell_of(app.bookmarks.times[0]) + widget.painter.gutter
        assert axis[mark_cell] == "◆"
        await pilot.press("q")
    again = LoopvizApp(TraceFile(load_timeline(trace)[1], title="blocking.py", trace_path=trace))
    async with again.run_test(size=(120, 36)) as pilot:  # saved beside the trace, drawn again
        assert again.query_one(TimelineView).render_line(0).text.count("◆") == 1
        await pilot.press("q")


async def test_a_paused_live_view_keeps_its_scale_while_the_script_runs(tmp_path: Path):
    from conftest import wait_until

    session = live_session(tmp_path, SLOW, "slow.py")
    app = LoopvizApp(LiveRecording(session))
    async with app.run_test(size=(120, 36)) as pilot:
        view = app.query_one(TimelineView)
        await wait_until(pilot, lambda: app.source.now() > 300_000_000)
        app.action_play_pause()  # an action: Pilot waits for a busy live app to idle on a press
        paused = view.viewport()
        events = len(session.timeline.events)
        await wait_until(pilot, lambda: len(session.timeline.events) > events + 20)
        assert view.viewport() == paused  # more came in, the script ran on: no rescaling
        app.action_quit_session()
        await wait_until(pilot, lambda: session.finished)


async def test_at_80x24_in_classroom_the_lane_holding_the_loop_is_brought_into_sight():
    from loopviz.painter import CLASSROOM_THEME

    _trace, timeline = load_timeline(DATA / "web_server.jsonl")
    app = LoopvizApp(TraceFile(timeline, title="web_server.py"), theme=CLASSROOM_THEME)
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(TimelineView)
        await pilot.press("home")
        for _block in timeline.blocks:
            await pilot.press("b")
            holder = app.moment.holder
            shown = [view.render_line(y).text[: view.painter.gutter]
                     for y in range(view.size.height)]  # fmt: skip
            assert any(line.startswith(f"■ {holder}") for line in shown), (holder, shown)
            assert "event loop" in shown[1] and app.query_one("#loop-panel").region.height >= 4
        await pilot.press("q")


def test_the_summary_says_what_the_recorder_could_not_see_and_blocks_in_c_code():
    from loopviz.summary import summarize

    timeline = labelled([
        {"t": 0, "ev": "loop", "impl": "asyncio"},
        create(1, "crunch"),
        {"t": 10, "ev": "resume", "task": 1},
        {"t": 300_000_000, "ev": "block", "task": 1, "start": 10, "end": 300_000_000,
         "where": "", "code": "", "stack": [], "gil": True},
        {"t": 300_000_000, "ev": "done", "task": 1, "outcome": "returned", "detail": "None"},
        {"t": 300_000_001, "ev": "unseen", "count": 2, "detail": "made on another loop"},
    ])  # fmt: skip
    text = summarize(timeline, None)
    assert "crunch: inside a C call that held the GIL" in text
    assert "the recorder could not see 2 task(s): made on another loop" in text
