"""UI scale: frame times on a synthetic trace of 10,000 tasks and ~1,000,000 events.

    python bench/ui_frames.py [--tasks 10000] [--steps 33] [--rows 48] [--cells 180]

A frame is what the timeline widget paints for one screen: the axis, the loop lane and ``rows``
task lanes of ``cells`` cells, through the same Painter the app uses (the widget adds only a
cache in front). The synthetic run is written to a trace file first, and opened as ``loopviz
replay`` opens it: the first LOAD_BATCH events are read and painted (the first frame), then the
rest loads while that frame is on screen, and the replay opens at the end (the whole trace in).
Then the median time of a frame after a scroll, a zoom and a replay step, and the memory the
replay holds per event (events, model, the replay's checkpoints and caches), measured on a second
load, opened at its end with the loop panel, under tracemalloc.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import median_ms, synthetic_events  # noqa: E402

from loopviz.painter import Painter, Viewport  # noqa: E402
from loopviz.replay import Moment, Replay  # noqa: E402
from loopviz.runs import LOAD_BATCH  # noqa: E402
from loopviz.trace import TraceLoader, TraceWriter, load_timeline  # noqa: E402


def frame(painter: Painter, moment: Moment, lanes: list, top: int, rows: int, view) -> None:
    """The timeline's rows as the app paints them at ``moment`` (the app works the moment out
    once per cursor move, in its redraw; a scroll or a zoom paints the same one again)."""
    timeline = moment.timeline
    painter.axis_row(timeline, view, moment=moment)
    painter.loop_row(timeline, view, moment)
    for lane in lanes[top : top + rows]:
        painter.task_row(timeline, lane, view, moment=moment)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=33)
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--cells", type=int, default=180)
    options = parser.parse_args()
    events = synthetic_events(options.tasks, options.steps)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "synthetic.jsonl"
        writer = TraceWriter(path, {"python": "3.11", "pid": 0, "loop": "asyncio"})
        writer.write(events)
        writer.close()
        del events
        started = time.perf_counter()
        loader = TraceLoader(path)  # as ``loopviz replay`` does: a first batch, then the rest
        loader.load(LOAD_BATCH)
        timeline = loader.timeline
        replay = Replay(timeline)
        painter = Painter()
        replay.seek_index(len(timeline.events) - 1)
        end = timeline.end_t
        fit = Viewport(0, end * 1.02 / options.cells, options.cells)
        frame(painter, replay.moment(), timeline.visible_tasks(replay.time), 0, options.rows, fit)
        first = time.perf_counter() - started
        loader.load()
        replay.seek_index(len(timeline.events) - 1)  # the whole run on screen, as a replay opens
        lanes = timeline.visible_tasks(replay.time)
        end = timeline.end_t
        fit = Viewport(0, end * 1.02 / options.cells, options.cells)
        moment = replay.moment()
        frame(painter, moment, lanes, 0, options.rows, fit)
        whole = time.perf_counter() - started
        tracemalloc.start()
        _trace, measured = load_timeline(path)
        opened = Replay(measured)  # as the app opens it: at the end, with the loop panel
        opened.seek_index(len(measured.events) - 1)
        opened.loop_state()
        held_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del measured, _trace, opened
    events = timeline.events

    rows, cells = options.rows, options.cells
    scroll = median_ms(lambda i: frame(painter, moment, lanes, (i * 97) % len(lanes), rows, fit))
    zooms = [Viewport(end // 3, fit.ns_per_cell / 2 ** (1 + i % 10), cells) for i in range(10)]
    zoom = median_ms(lambda i: frame(painter, moment, lanes, 0, rows, zooms[i % 10]))

    def step(i: int) -> None:
        replay.step(1)
        frame(painter, replay.moment(), lanes, 0, rows, fit)

    replay.seek_index(len(events) // 2)
    stepped = median_ms(step)
    assert len(lanes) == options.tasks
    per_event = held_bytes / len(events)
    size = f"frames of {rows} lanes × {cells} cells"
    print(f"{len(events):,} events, {options.tasks:,} tasks, {size}")
    print(f"first frame (first {LOAD_BATCH:,} events)    {first * 1e3:9.0f} ms")
    print(f"whole trace in, and painted             {whole * 1e3:9.0f} ms")
    print(f"frame after a scroll                    {scroll:9.2f} ms (median)")
    print(f"frame after a zoom                      {zoom:9.2f} ms (median)")
    print(f"frame after a replay step               {stepped:9.2f} ms (median)")
    print(f"memory held (events, model, replay)     {per_event:9.0f} bytes/event")


if __name__ == "__main__":
    main()
