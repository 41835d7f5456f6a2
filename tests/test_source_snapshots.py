"""Snapshot tests of the source pane and the await tree at 160 columns (where they are on by
default). Regenerate with ``pytest tests/test_source_snapshots.py --snapshot-update`` and look at
the SVGs before committing them. Each docstring says what a reviewer should see."""

from __future__ import annotations

import pytest

from conftest import REPO
from loopviz.painter import ASCII_THEME, CLASSROOM_THEME, DEFAULT_THEME
from loopviz.runs import TraceFile
from loopviz.trace import load_timeline
from loopviz.ui.app import LoopvizApp

WIDE = (160, 45)


@pytest.fixture(autouse=True)
def in_the_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # traces name their files from the repository's root


def app_at(name: str, seconds: float, theme=DEFAULT_THEME) -> tuple[LoopvizApp, object]:
    _trace, timeline = load_timeline(REPO / "tests" / "data" / f"{name}.jsonl")
    app = LoopvizApp(TraceFile(timeline, title=f"{name}.py", python="3.11.7"), theme=theme)

    async def seek(pilot) -> None:
        app.replay.seek_time(int(seconds * 1e9))
        app.refresh_screen()
        await pilot.pause()

    return app, seek


def test_source_pane_at_the_block(snap_compare):
    """blocking.py at 2.6 s: on the right, the pane titled "blocking.py:25  reporter blocks the
    loop here", an orange line saying the trace has no digest to check the file against; line 25
    `time.sleep(2)` marked ▶ on a dark red band; under line 18 `await asyncio.sleep(period)` the
    row "↑ ● fast, medium, slow"; under line 30 "↑ ◷ main". Below it, AWAIT TREE at 2.600 s:
    main waiting, └─ TaskGroup (4 left), then fast, medium, slow starved and ■ reporter blocked,
    with ├─ └─ tree lines."""
    app, seek = app_at("blocking", 2.6)
    assert snap_compare(app, terminal_size=WIDE, run_before=seek)


def test_source_pane_in_an_imported_module(snap_compare):
    """warehouse.py's block at 0.5 s, which is inside the module it imports: the pane shows
    inventory.py (no notice: the file matches the recording's digest), line 10
    `time.sleep(0.4)` marked ▶ on red; the tree: main → gather (3) → picker, picker starved and
    auditor blocked."""
    app, seek = app_at("warehouse", 0.5)
    assert snap_compare(app, terminal_size=WIDE, run_before=seek)


def test_source_pane_classroom(snap_compare):
    """--classroom at 2.6 s in blocking.py: the same pane and tree beside two-row lanes; the
    culprit line on a brighter red, the labels bold white."""
    app, seek = app_at("blocking", 2.6, CLASSROOM_THEME)
    assert snap_compare(app, terminal_size=WIDE, run_before=seek)


def test_source_pane_ascii(snap_compare):
    """--ascii at 2.6 s in blocking.py: only ASCII in the pane and the tree: "> 25 |" for the
    culprit, "^ + fast, medium, slow" under line 18, "`- TaskGroup (4 left)" and "|-" tree
    lines, lane glyphs + and X."""
    app, seek = app_at("blocking", 2.6, ASCII_THEME)
    assert snap_compare(app, terminal_size=WIDE, run_before=seek)
