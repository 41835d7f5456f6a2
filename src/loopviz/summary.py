"""The short plain-text account of a run that ``loopviz record`` prints at the end.

It answers what a developer asks first: how many tasks, how many events, how long, how it ended,
and every block with the line that caused it. Plain text, so it reads the same in a terminal,
a CI log or a bug report.
"""

from __future__ import annotations

from loopviz.model import Timeline
from loopviz.replay import culprit_words
from loopviz.units import clock, duration


def summarize(timeline: Timeline, trace_path: str | None = None) -> str:
    tasks = [lane for lane in timeline.tasks.values() if not lane.internal]
    internal = len(timeline.tasks) - len(tasks)
    outcomes: dict[str, int] = {}
    for lane in tasks:
        key = lane.outcome or "unfinished"
        outcomes[key] = outcomes.get(key, 0) + 1
    outcome_text = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
    lines = [
        f"loopviz: {len(timeline.events):,} events, {len(tasks)} tasks"
        + (f" ({outcome_text})" if outcome_text else "")
        + (f" plus {internal} of asyncio's own" if internal else "")
        + f", {len(timeline.threads)} worker threads, {duration(timeline.end_t)} in all",
    ]
    blocks = timeline.blocks
    if len(timeline.loop_threads) > 1:
        threads = ", ".join(timeline.loop_threads)
        lines.append(
            f"{len(timeline.loop_threads)} event loops (threads {threads}): every task is "
            "recorded, and the event loop lane shows all loops together"
        )
    if timeline.loop_impl is None:
        lines.append("no asyncio event loop was started: only the output was recorded")
    elif blocks:
        total = sum(block.duration(timeline.end_t) for block in blocks)
        lines.append(f"loop blocked {len(blocks)} time(s), {duration(total)} in all:")
        for block in blocks:
            culprit = f"{block.code} at {block.where}" if block.where and not block.gil else (
                culprit_words(block)
            )  # fmt: skip
            lines.append(
                f"  {clock(block.start)}  {duration(block.duration(timeline.end_t)):>8}"
                f"  {timeline.display_name(block.task)}: {culprit}"
            )
    else:
        lines.append("loop never blocked")
    ending = f"exit status {timeline.exit_code}"
    if timeline.error:
        ending += f" ({timeline.error})"
    lines.append(ending)
    if timeline.unrecorded:
        lines.append(f"not recorded on this loop: {timeline.unrecorded}")
    for notice in timeline.unseen:
        lines.append(f"the recorder could not see {notice.count or 'some'} task(s)"
                     + (f": {notice.detail}" if notice.detail else ""))  # fmt: skip
    if trace_path:
        lines.append(f"trace written to {trace_path}")
    return "\n".join(lines)
