"""Snapshot tests: what the screen must show, compared with SVGs a person has looked at.

Regenerate after an intended change with ``pytest tests/test_snapshots.py --snapshot-update``,
then look at the new SVGs (``snapshot_report.html``) before committing them. Each test's
docstring says what a reviewer should see.
"""

from __future__ import annotations

from conftest import REPO
from loopviz.catalogue import find
from loopviz.painter import ASCII_THEME, CLASSROOM_THEME, DEFAULT_THEME
from loopviz.runs import TraceFile
from loopviz.trace import load_timeline
from loopviz.ui.app import LoopvizApp

SIZE = (120, 36)


def app_for(name: str, at_seconds: float | None = None, theme=DEFAULT_THEME,
            lesson: bool = False) -> LoopvizApp:  # fmt: skip
    _trace, timeline = load_timeline(REPO / "tests" / "data" / f"{name}.jsonl")
    app = LoopvizApp(TraceFile(timeline, title=f"{name}.py", python="3.11.7"), theme=theme,
                     scenario=find(name) if lesson else None)  # fmt: skip
    app.start_at = None if at_seconds is None else int(at_seconds * 1e9)
    return app


async def move_cursor(pilot) -> None:
    app = pilot.app
    if app.start_at is not None:
        app.replay.seek_time(app.start_at)
        app.refresh_screen()
    await pilot.pause()


def test_blocking_mid_block(snap_compare):
    """blocking.py at 2.6 s: status bar and banner red with "BLOCKED 1.1 s: time.sleep(2) at
    blocking.py:25", "starved: fast, medium, slow"; a red band from 1.5 s to the yellow cursor,
    labelled "BLOCKED 1.1 s" on the event loop's lane (the axis' tick labels untouched);
    reporter red with ■, the three tickers orange with ● (ready, starved), exactly the three the
    banner names; nothing drawn after the cursor; the explanation "reporter blocks the loop ...;
    3 tasks are starved: fast, medium, slow"; the loop panel "blocked by reporter:
    time.sleep(2)" with a ready queue of the same three."""
    assert snap_compare(app_for("blocking", 2.6), terminal_size=SIZE, run_before=move_cursor)


def test_blocking_finished(snap_compare):
    """blocking.py after it ended: lanes for main, fast, medium, slow, reporter, each ending in a
    green ✔; the band labelled "BLOCKED 2 s" on the event loop's lane; the header and the loop
    panel both say "finished"; the explanation "the program ends with exit status 0"; the
    output pane with the last line highlighted."""
    assert snap_compare(app_for("blocking"), terminal_size=SIZE)


def test_gather(snap_compare):
    """gather.py at 5 s: the four downloads, each lane labelled apart (download #1 to #4, as this
    trace has no arguments recorded): two one after the other, then two side by side labelled
    "sleep 2s" while main waits on "gather (2)"; no band anywhere."""
    assert snap_compare(app_for("gather", 5.0), terminal_size=SIZE, run_before=move_cursor)


def test_offload(snap_compare):
    """offload.py at 2.6 s: no band; a purple worker-thread lane "worker 1" (asyncio's first
    worker thread) running since about 1.5 s; reporter waiting on "thread write_report()"; the
    tickers still ticking."""
    assert snap_compare(app_for("offload", 2.6), terminal_size=SIZE, run_before=move_cursor)


def test_help_screen(snap_compare):
    """The help screen over the app: each state's glyph in its colour with its meaning (running,
    ready / starved, waiting, blocked, idle), the red band, the three endings, the worker
    thread, then every key."""
    assert snap_compare(app_for("blocking"), press=["question_mark"], terminal_size=SIZE)


def test_classroom_theme(snap_compare):
    """--classroom at 2.6 s in blocking.py: every lane two rows high with its name and its wait
    labels ("sleep 1s", "TaskGroup (4 left)") on the first row only, the second row the bare
    track; heavy ━ waits, bright colours, whole-cell steps; the same red band, banner and
    starved tasks as the default theme."""
    app = app_for("blocking", 2.6, CLASSROOM_THEME)
    assert snap_compare(app, terminal_size=SIZE, run_before=move_cursor)


def test_ascii_theme(snap_compare):
    """--ascii (and NO_COLOR) at 2.6 s in blocking.py: states told apart by character alone:
    # running, X blocked, + ready, - waiting, . idle; lane glyphs >, X, +, -; cursor V; every
    character ASCII, Textual's borders and footer included (| and - rules, "<" and ">" keys,
    "us" for microseconds)."""
    app = app_for("blocking", 2.6, ASCII_THEME)
    assert snap_compare(app, terminal_size=SIZE, run_before=move_cursor)


def test_compact_80x24_lesson(snap_compare):
    """blocking.py at 2.6 s on an 80x24 terminal, opened as a lesson: the header keeps the
    block's words ("BLOCKED 1.1 s: time.sleep(2) at ...", Python and loop kind dropped), the red
    banner, the yellow "WATCH FOR" box with the scenario's text under it (three rows at most),
    all five lanes and the event loop with the band, a narrow side panel whose "THE LOOP NOW"
    (blocked by reporter, a ready queue of three) stays in sight under short task details, the
    explanation, four output lines and the footer."""
    app = app_for("blocking", 2.6, lesson=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=move_cursor)


def test_classroom_lesson_key_moment_160x45(snap_compare):
    """--classroom on a 160x45 projector, blocking.py after pressing Home then k: the cursor at
    1.621 s where the block is first seen; banner "BLOCKED 117 ms", starved fast and medium (●
    on their lanes), reporter ■; the explanation "reporter blocks the loop: time.sleep(2) ..." and
    a yellow "KEY MOMENT (block). Why it matters: ..." line under it; "WATCH FOR" at the top."""
    app = app_for("blocking", theme=CLASSROOM_THEME, lesson=True)
    assert snap_compare(app, press=["home", "k"], terminal_size=(160, 45))
