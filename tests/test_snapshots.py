"""Snapshot tests: what the screen must show, compared with SVGs a person has looked at.

Regenerate after an intended change with ``pytest tests/test_snapshots.py --snapshot-update``,
then look at the new SVGs (``snapshot_report.html``) before committing them. Each test's
docstring says what a reviewer should see.
"""

from __future__ import annotations

from conftest import REPO
from loopviz.trace import load_timeline
from loopviz.ui.app import LoopvizApp
from loopviz.ui.painter import ASCII_THEME, CLASSROOM_THEME, DEFAULT_THEME

SIZE = (120, 36)


def app_for(name: str, at_seconds: float | None = None, theme=DEFAULT_THEME) -> LoopvizApp:
    _trace, timeline = load_timeline(REPO / "tests" / "data" / f"{name}.jsonl")
    app = LoopvizApp(timeline=timeline, title=f"{name}.py", python="3.11.7", theme=theme)
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
    blocking.py:25", "starved: fast, medium, slow"; a red band from 1.5 s to the yellow cursor;
    reporter red, the three tickers orange (ready, starved); nothing drawn after the cursor;
    the loop panel says "blocked by reporter: time.sleep(2)" with a ready queue of three."""
    assert snap_compare(app_for("blocking", 2.6), terminal_size=SIZE, run_before=move_cursor)


def test_blocking_finished(snap_compare):
    """blocking.py after it ended: lanes for main, fast, medium, slow, reporter, each ending in a
    green ✔; the band labelled "BLOCKED 2 s"; the explanation "the program ends with exit
    status 0"; the output pane with the last line highlighted."""
    assert snap_compare(app_for("blocking"), terminal_size=SIZE)


def test_gather(snap_compare):
    """gather.py at 5 s: the four downloads: two one after the other, then two side by side
    labelled "sleep 2s" while main waits on "gather (2)"; no band anywhere."""
    assert snap_compare(app_for("gather", 5.0), terminal_size=SIZE, run_before=move_cursor)


def test_offload(snap_compare):
    """offload.py at 2.6 s: no band; a purple worker-thread lane "asyncio_0" running since
    about 1.5 s; reporter waiting on "thread write_report()"; the tickers still ticking."""
    assert snap_compare(app_for("offload", 2.6), terminal_size=SIZE, run_before=move_cursor)


def test_help_screen(snap_compare):
    """The help screen over the app: each state's glyph in its colour with its meaning (running,
    ready / starved, waiting, blocked, idle), the red band, the three endings, the worker
    thread, then every key."""
    assert snap_compare(app_for("blocking"), press=["question_mark"], terminal_size=SIZE)


def test_classroom_theme(snap_compare):
    """--classroom at 2.6 s in blocking.py: every lane two rows high, heavy ━ waits, bright
    colours, whole-cell steps; the same red band and banner as the default theme."""
    app = app_for("blocking", 2.6, CLASSROOM_THEME)
    assert snap_compare(app, terminal_size=SIZE, run_before=move_cursor)


def test_ascii_theme(snap_compare):
    """--ascii (and NO_COLOR) at 2.6 s in blocking.py: states told apart by character alone:
    # running, X blocked, + ready, - waiting, . idle; lane glyphs >, X, +, -; cursor V."""
    app = app_for("blocking", 2.6, ASCII_THEME)
    assert snap_compare(app, terminal_size=SIZE, run_before=move_cursor)
