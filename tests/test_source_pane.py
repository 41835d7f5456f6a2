"""The source pane: which line it shows at the cursor, the files it reads, and the pane in the
app (Pilot): at a block, across two files, with a changed and a missing file, clicks, keys."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import pytest
from test_app import BLOCKING as BLOCKING_SCRIPT

from conftest import REPO, wait_until
from loopviz.awaittree import WaitIndex
from loopviz.painter import ASCII_THEME
from loopviz.replay import Replay
from loopviz.runs import LiveRecording, TraceFile
from loopviz.session import Session, Target
from loopviz.sourcecode import Focus, SourceFiles, focus_at, next_event_at
from loopviz.trace import load_timeline
from loopviz.ui.app import LoopvizApp
from loopviz.ui.awaittree import AwaitTreePanel
from loopviz.ui.source import CodeColumn, SourcePane
from loopviz.ui.timeline import TimelineView

DATA = REPO / "tests" / "data"
WIDE = (160, 45)
SCRIPT = "tests/programs/warehouse/warehouse.py"
MODULE = "tests/programs/warehouse/inventory.py"
BLOCKING = "scenarios/blocking.py"


@pytest.fixture(autouse=True)
def in_the_repo(monkeypatch):
    """Traces name files from where they were recorded: the repository's root."""
    monkeypatch.chdir(REPO)


def focus_in(name: str, seconds: float | None = None, index: int | None = None) -> Focus | None:
    _trace, timeline = load_timeline(DATA / f"{name}.jsonl")
    replay = Replay(timeline)
    replay.seek_index(index) if index is not None else replay.seek_time(int(seconds * 1e9))
    return focus_at(timeline, replay.index, WaitIndex(timeline).at(replay.index), replay.view)


# -- which line --------------------------------------------------------------------------------


def test_the_line_of_each_kind_of_event():
    # event 9: fast suspends at its await; 8: its first step runs up to that await
    assert focus_in("blocking", index=9) == Focus(BLOCKING, 18, "await", 2, "fast awaits here")
    assert focus_in("blocking", index=8) == Focus(BLOCKING, 18, "running", 2,
                                                  "fast runs up to here")  # fmt: skip
    assert focus_in("blocking", index=3) == Focus(BLOCKING, 31, "spawn", 2,
                                                  "fast is created here")  # fmt: skip
    during = focus_in("blocking", 2.6)
    assert during == Focus(BLOCKING, 25, "block", 5, "reporter blocks the loop here")
    assert focus_in("warehouse", 0.5) == Focus(MODULE, 10, "block", 4,
                                               "auditor blocks the loop here")  # fmt: skip


def test_a_step_that_ends_its_task_shows_the_await_it_resumed_from():
    _trace, timeline = load_timeline(DATA / "blocking.jsonl")
    replay = Replay(timeline)
    main_resumes = max(i for i, e in enumerate(timeline.events)
                       if e.ev == "resume" and e.task == 1)  # fmt: skip
    replay.seek_index(main_resumes)
    focus = focus_at(timeline, replay.index, WaitIndex(timeline).at(replay.index), replay.view)
    assert focus == Focus(BLOCKING, 30, "resumed", 1, "main runs on from here")


def test_clicking_a_line_finds_the_next_event_there_and_wraps_round():
    _trace, timeline = load_timeline(DATA / "blocking.jsonl")
    first = next_event_at(timeline, BLOCKING, 18, -1)
    assert timeline.events[first].waiting_on.where == f"{BLOCKING}:18"
    later = next_event_at(timeline, BLOCKING, 18, first)
    assert later > first and timeline.events[later].ev == "suspend"
    last = len(timeline.events) - 1
    assert next_event_at(timeline, BLOCKING, 18, last) == first  # from the start again
    assert next_event_at(timeline, BLOCKING, 25, -1) == next(
        i for i, e in enumerate(timeline.events) if e.ev == "block_begin"
    )
    assert next_event_at(timeline, BLOCKING, 2, -1) is None  # the docstring: no event


# -- the files ---------------------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def trace_naming(tmp_path: Path, files: dict[str, Path]) -> Path:
    """A copy of warehouse.jsonl whose ``source`` events give each file's ``path`` as given."""
    out = tmp_path / "warehouse.jsonl"
    lines = (DATA / "warehouse.jsonl").read_text().splitlines()
    with out.open("w") as f:
        for line in lines:
            event = json.loads(line)
            if event.get("ev") == "source" and event["file"] in files:
                event["path"] = str(files[event["file"]])
            f.write(json.dumps(event) + "\n")
    return out


def test_a_recorded_file_is_found_where_it_was_and_checked():
    _trace, timeline = load_timeline(DATA / "warehouse.jsonl")
    source = SourceFiles(timeline, REPO).get(MODULE)
    assert source.notice == "" and source.lines[9] == (
        "    time.sleep(0.4)  # a blocking call inside the imported module"
    )
    assert source.path == REPO / MODULE  # the recorded path is not here: found from cwd


def test_the_recorded_path_comes_first_and_the_digest_picks_the_right_copy(tmp_path):
    moved = tmp_path / "elsewhere" / "inventory.py"
    moved.parent.mkdir()
    shutil.copy(REPO / MODULE, moved)
    trace = trace_naming(tmp_path, {MODULE: moved})
    _trace, timeline = load_timeline(trace)
    assert SourceFiles(timeline, tmp_path).get(MODULE).path == moved
    moved.write_text(moved.read_text().replace("0.4", "0.5"))  # now only the cwd copy matches
    source = SourceFiles(timeline, REPO).get(MODULE)
    assert (source.path, source.notice) == (REPO / MODULE, "")


def test_a_changed_a_missing_and_an_unchecked_file_each_get_one_sentence(tmp_path):
    changed = tmp_path / "inventory.py"
    changed.write_text((REPO / MODULE).read_text().replace("0.4", "4"))
    trace = trace_naming(tmp_path, {MODULE: changed, SCRIPT: tmp_path / "gone.py"})
    _trace, timeline = load_timeline(trace)
    files = SourceFiles(timeline, tmp_path)  # nothing under this cwd
    source = files.get(MODULE)
    assert source.notice == f"{MODULE} changed since the recording: lines may differ from the run."
    assert source.lines is not None and "time.sleep(4)" in source.lines[9]
    missing = files.get(SCRIPT)
    assert missing.lines is None
    assert missing.notice == f"{SCRIPT} is not on this machine (it was {tmp_path / 'gone.py'})."
    _trace, old = load_timeline(DATA / "blocking.jsonl")  # recorded before ``source`` events
    unchecked = SourceFiles(old, REPO).get(BLOCKING)
    assert unchecked.notice == f"Not checked: the trace has no digest of {BLOCKING}."
    assert SourceFiles(old, tmp_path).get(BLOCKING).notice == (
        f"{BLOCKING} cannot be found from {tmp_path}."
    )
    assert SourceFiles(old, REPO).get("README.md").lines is None  # only Python sources


# -- the pane in the app -----------------------------------------------------------------------


def replay_app(trace: Path, theme=None) -> LoopvizApp:
    _trace, timeline = load_timeline(trace)
    extra = {"theme": theme} if theme is not None else {}
    return LoopvizApp(TraceFile(timeline, title=trace.stem, python="3.11.7"), **extra)


def pane_lines(app: LoopvizApp) -> list[str]:
    return app.query_one(SourcePane).render().plain.splitlines()


async def seek(pilot, seconds: float) -> list[str]:
    """Put the cursor at ``seconds``; the pane's lines there."""
    pilot.app.replay.seek_time(int(seconds * 1e9))
    pilot.app.refresh_screen()
    await pilot.pause()
    return pane_lines(pilot.app)


def tree_lines(app: LoopvizApp) -> list[str]:
    return app.query_one(AwaitTreePanel).render().plain.splitlines()


async def test_at_a_block_the_culprit_is_marked_and_the_tickers_await_line_names_them():
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        lines = await seek(pilot, 2.6)
        assert lines[0] == "blocking.py:25  reporter blocks the loop here"
        assert lines[1].startswith("Not checked: the trace has no digest")
        assert any(line.startswith("▶ 25 │     time.sleep(2)  # blocks") for line in lines)
        at_18 = lines.index("  18 │         await asyncio.sleep(period)")
        assert lines[at_18 + 1].strip() == "│         ↑ ● fast, medium, slow"
        assert any(line.startswith("  30 │     async with") for line in lines)
        assert "◷ main" in "\n".join(lines)
        assert tree_lines(app)[1:4] == ["◷ main waiting", "└─ TaskGroup (4 left)",
                                        "   ├─ ● fast starved sleep 0.25s"]  # fmt: skip
        await pilot.press("q")


async def test_a_block_inside_an_imported_module_shows_that_file_then_the_script_again():
    app = replay_app(DATA / "warehouse.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        lines = await seek(pilot, 0.5)
        pane = app.query_one(SourcePane)
        assert pane.content.file == MODULE and pane.content.source.notice == ""
        assert lines[0] == "inventory.py:10  auditor blocks the loop here"  # the full path: no room
        assert any(line.startswith("▶ 10 │     time.sleep(0.4)  # a blocking") for line in lines)
        while app.replay.event.ev != "suspend":
            await pilot.press("right")
        assert pane.content.file == SCRIPT
        assert pane_lines(app)[0] == "warehouse.py:15  picker #2 awaits here"
        assert any("↑ ◷ picker" in line or "◷ picker" in line for line in pane_lines(app))
        await pilot.press("q")


async def test_a_changed_and_a_missing_file_in_the_pane(tmp_path, monkeypatch):
    changed = tmp_path / "inventory.py"
    changed.write_text((REPO / MODULE).read_text().replace("0.4", "4"))
    trace = trace_naming(tmp_path, {MODULE: changed, SCRIPT: tmp_path / "gone.py"})
    monkeypatch.chdir(tmp_path)
    app = replay_app(trace)
    async with app.run_test(size=WIDE) as pilot:
        lines = await seek(pilot, 0.5)
        notice = f"{MODULE} changed since the recording: lines may differ from the run."
        assert " ".join(lines[1:3]) == notice  # wrapped to the pane, never cut
        assert any(line.startswith("▶ 10 │     time.sleep(4)  # a blocking") for line in lines)
        lines = await seek(pilot, 0.2)
        assert lines[0] == "warehouse.py:15  picker #2 awaits here"
        sentence = f"{SCRIPT} is not on this machine (it was {tmp_path / 'gone.py'})."
        wrapped = "".join(lines[1:])  # the title and one sentence, wrapped (a path cut): no code
        assert wrapped.replace(" ", "") == sentence.replace(" ", "")
        await pilot.press("q")


async def test_clicking_a_line_moves_the_cursor_to_the_next_event_there():
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        lines = await seek(pilot, 2.6)
        pane = app.query_one(SourcePane)
        row = lines.index("  18 │         await asyncio.sleep(period)")
        before = app.replay.index
        await pilot.click(SourcePane, offset=(8, row))
        event = app.replay.event
        assert app.replay.index > before and event.ev == "suspend"
        assert event.waiting_on.where == f"{BLOCKING}:18"
        assert pane.content.focus.line == 18 and pane.content.focus.why == "await"
        explained = str(app.query_one("#explain").content)
        assert "awaits at blocking.py:18" in explained  # the explanation moved with it
        await pilot.press("q")


async def test_clicking_a_task_in_the_await_tree_selects_its_lane():
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        await seek(pilot, 1.0)
        rows = tree_lines(app)
        row = next(i for i, line in enumerate(rows) if "slow" in line)
        await pilot.click(AwaitTreePanel, offset=(8, row))
        await pilot.pause()
        view = app.query_one(TimelineView)
        assert app.timeline.tasks[view.selected_task].label == "slow"
        assert str(app.query_one("#task-panel").content).startswith("slow")
        await pilot.press("q")


async def test_c_toggles_the_pane_which_is_on_by_default_only_when_wide():
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=(120, 36)) as pilot:
        column = app.query_one(CodeColumn)
        assert not column.display
        await pilot.press("c")
        assert column.display and pane_lines(app)[0] == BLOCKING  # the end: no line of its own
        await pilot.press("c")
        assert not column.display
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        assert app.query_one(CodeColumn).display
        await pilot.press("c")
        assert not app.query_one(CodeColumn).display
        await pilot.press("q")


async def test_stepping_back_and_forth_the_pane_and_the_explanation_move_together():
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("home")

        def screen() -> tuple[str, list[str], list[str]]:
            return str(app.query_one("#explain").content), pane_lines(app), tree_lines(app)

        seen = []
        for _ in range(70):  # through the block
            seen.append(screen())
            await pilot.press("right")
        for shown in reversed(seen):
            await pilot.press("left")
            assert screen() == shown
        titles = {pane[0] for _words, pane, _tree in seen}
        assert "blocking.py:25  reporter blocks the loop here" in titles
        assert f"{BLOCKING}:18  fast awaits here" in titles
        await pilot.press("q")


async def test_the_ascii_theme_puts_only_ascii_in_the_pane_and_the_tree():
    app = replay_app(DATA / "blocking.jsonl", ASCII_THEME)
    async with app.run_test(size=WIDE) as pilot:
        pane, tree = await seek(pilot, 2.6), tree_lines(app)
        assert all(line.isascii() for line in pane + tree)
        assert "> 25 | " in "\n".join(pane) and "^ + fast, medium, slow" in "\n".join(pane)
        assert "`- TaskGroup (4 left)" in tree
        await pilot.press("q")


async def test_live_the_pane_shows_the_culprit_while_the_loop_is_blocked(tmp_path):
    script = tmp_path / "blocky.py"
    script.write_text(textwrap.dedent(BLOCKING_SCRIPT))  # tasks ticker and blocker
    session = Session(Target(script, []), tmp_path / "blocky.jsonl")
    app = LoopvizApp(LiveRecording(session))
    async with app.run_test(size=WIDE) as pilot:
        await wait_until(pilot, lambda: (block := app.moment.block) is not None
                         and bool(block.where))  # fmt: skip
        await pilot.pause(0.1)
        lines = pane_lines(app)
        assert lines[0].endswith("blocky.py:10  blocker blocks the loop here")
        assert "▶ 10 │     time.sleep(0.8)" in lines
        assert any("ticker" in line for line in tree_lines(app))
        await wait_until(pilot, lambda: session.finished)
        await pilot.press("q")


async def test_a_name_that_fits_goes_beside_its_line_else_on_a_row_under_it():
    app = replay_app(DATA / "blocking.jsonl")
    async with app.run_test(size=WIDE) as pilot:
        app.replay.seek_index(9)  # fast has just paused at line 18; main waits at line 30
        app.refresh_screen()
        await pilot.pause()
        lines = pane_lines(app)
        assert "▶ 18 │         await asyncio.sleep(period)  ◷ fast" in lines
        at_30 = next(i for i, line in enumerate(lines) if line.startswith("  30 │"))
        assert "◷ main" not in lines[at_30] and lines[at_30 + 1].strip() == "│     ↑ ◷ main"
        await pilot.press("q")
