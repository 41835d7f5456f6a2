"""Comparing runs: how long each took and how long its loop was blocked, in words.

Used by ``loopviz compare`` before it opens the two runs stacked on one time axis, and printed
alone when there is no terminal.
"""

from __future__ import annotations

from loopviz.model import Timeline
from loopviz.units import duration


def blocked_ns(timeline: Timeline) -> int:
    return sum(block.duration(timeline.end_t) for block in timeline.blocks)


def describe(name: str, timeline: Timeline) -> str:
    blocks = len(timeline.blocks)
    blocked = (
        f"loop blocked {duration(blocked_ns(timeline))} in {blocks} block{'s' * (blocks != 1)}"
        if blocks
        else "loop never blocked"
    )
    tasks = len([lane for lane in timeline.tasks.values() if not lane.internal])
    return f"{name}: took {duration(timeline.end_t)}, {blocked}, {tasks} tasks"


def comparison_lines(runs: list[tuple[str, Timeline]]) -> list[str]:
    lines = [describe(name, timeline) for name, timeline in runs]
    if len(runs) == 2:
        (a, ta), (b, tb) = runs
        faster = a if ta.end_t < tb.end_t else b
        gap = abs(ta.end_t - tb.end_t)
        lines.append(f"{faster} finished {duration(gap)} sooner; blocked time "
                     f"{duration(blocked_ns(ta))} vs {duration(blocked_ns(tb))}")  # fmt: skip
    return lines
