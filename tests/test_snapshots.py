"""Snapshot tests: what the screen must show, compared with SVGs a person has looked at.

Regenerate after an intended change with ``pytest tests/test_snapshots.py --snapshot-update``,
then look at the new SVGs (``snapshot_report.html``) before committing them.
"""

from __future__ import annotations

from conftest import REPO
from loopviz.trace import load_timeline
from loopviz.ui.app import LoopvizApp


def finished_app(name: str) -> LoopvizApp:
    _trace, timeline = load_timeline(REPO / "tests" / "data" / f"{name}.jsonl")
    return LoopvizApp(timeline=timeline, title=f"{name}.py", python="3.11.7")


def test_finished_blocking_run(snap_compare):
    """The blocking scenario after it ended: one lane per task and one for the loop; a red band
    labelled "BLOCKED 2 s" across every lane from 1.5 s to 3.5 s; reporter red inside it; the
    tickers orange (starved) inside it; each lane ends with a green ✔; output below."""
    assert snap_compare(finished_app("blocking"), terminal_size=(120, 36))
