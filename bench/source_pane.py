"""Frames with the source pane and the await tree open, on 10,000 tasks and ~1,000,000 events.

    python bench/source_pane.py [--tasks 10000] [--steps 33] [--rounds 30]

The synthetic run of ``ui_frames.py``, with what the pane needs: every suspend names its await
line (one of three lines of this file, so thousands of tasks share each), and a ``main`` task
awaits a gather of all of them (a tree of 10,000 children, drawn up to the panel's height). The
app runs headless at 160×45, where the pane is on by default.

Measured side by side in one run, alternating: a replay-step frame as ``ui_frames.py`` measures
it (the painter's rows), and the same frame plus the code column's work for that step (the waits
at the cursor, the line, the marks, the tree, and rendering the pane and the panel). Also: the
first time the pane is shown at the end of the trace and a seek to a random moment (both rebuild
the waits from the lanes, a lookup per task).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import median_ms, synthetic_events  # noqa: E402
from ui_frames import frame  # noqa: E402

from loopviz.awaittree import WaitIndex  # noqa: E402
from loopviz.events import AnyEvent, Create, Resume, Suspend, Wait  # noqa: E402
from loopviz.model import Timeline  # noqa: E402
from loopviz.painter import Painter, Viewport  # noqa: E402
from loopviz.runs import TraceFile  # noqa: E402
from loopviz.ui.app import LoopvizApp  # noqa: E402
from loopviz.ui.awaittree import AwaitTreePanel  # noqa: E402
from loopviz.ui.source import CodeColumn, SourcePane  # noqa: E402

HERE = "bench/source_pane.py"
SIZE = (160, 45)
ROWS, CELLS = 30, 60  # what the timeline shows beside the code column at 160×45


def events_with_lines(tasks: int, steps: int) -> list[AnyEvent]:
    events = synthetic_events(tasks, steps, lambda task: f"{HERE}:{40 + task % 3}")
    main = tasks + 1
    gather: list[AnyEvent] = [
        Create(0, main, "main", "main", None, f"{HERE}:50"),
        Resume(0, main),
        Suspend(0, main, Wait("gather", f"gather ({tasks})", children=list(range(1, tasks + 1)),
                              where=f"{HERE}:51")),
    ]  # fmt: skip
    return gather + events


async def measure(app: LoopvizApp, rounds: int) -> dict[str, float]:
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        timeline, replay = app.timeline, app.replay
        column = app.query_one(CodeColumn)
        pane, panel = app.query_one(SourcePane), app.query_one(AwaitTreePanel)
        assert column.display, "the pane is on by default at 160 columns"
        painter = Painter()
        lanes = timeline.visible_tasks(replay.time)
        fit = Viewport(0, timeline.end_t * 1.02 / CELLS, CELLS)

        def code(selected: int | None = None) -> None:
            column.show_at(replay.index, replay.view, selected)
            pane.render()
            panel.render()

        replay.seek_index(len(timeline.events) - 1)
        column.waits = WaitIndex(timeline)  # as new: the first pane at the end of a big trace
        started = time.perf_counter()
        code()
        opened = (time.perf_counter() - started) * 1e3

        replay.seek_index(len(timeline.events) // 2)
        plain, with_pane = [], []
        for i in range(rounds):  # alternate: the same kind of step, with and without the pane
            for samples, extra in ((plain, None), (with_pane, code)):
                replay.step(1)
                started = time.perf_counter()
                frame(painter, replay.moment(), lanes, 0, ROWS, fit)
                if extra is not None:
                    extra(i)
                samples.append((time.perf_counter() - started) * 1e3)
        moves = random.Random(16)

        def seek(_i: int) -> None:
            replay.seek_index(moves.randrange(len(timeline.events)))
            code()

        seeks = median_ms(seek, rounds)
        shown = pane.render().plain.splitlines()
        tree = panel.render().plain.splitlines()
        await pilot.press("q")
    return {"opened": opened, "plain": statistics.median(plain),
            "with": statistics.median(with_pane), "seek": seeks, "pane": shown,
            "tree": tree}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=33)
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args()
    timeline = Timeline()  # the model as a replay holds it (ui_frames.py times the loading)
    timeline.add_events(events_with_lines(options.tasks, options.steps))
    count = len(timeline.events)
    app = LoopvizApp(TraceFile(timeline, title="synthetic", python="3.11"))
    result = asyncio.run(measure(app, options.rounds))
    print(f"{count:,} events, {options.tasks:,} tasks, app at {SIZE[0]}×{SIZE[1]}, "
          f"timeline frames of {ROWS} lanes × {CELLS} cells")  # fmt: skip
    print(f"pane first shown, at the end (rebuilt)    {result['opened']:9.0f} ms")
    print(f"step frame, pane closed                   {result['plain']:9.2f} ms (median)")
    print(f"step frame, pane open                     {result['with']:9.2f} ms (median)")
    print(f"  ratio                                   {result['with'] / result['plain']:9.2f}×")
    print(f"seek to a random moment, pane open        {result['seek']:9.2f} ms (median)")
    print("\nthe pane and the tree after the last seek:")
    for line in [*result["pane"][:6], "...", *result["tree"][:5]]:
        print(f"  {line}")


if __name__ == "__main__":
    main()
