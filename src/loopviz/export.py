"""Exports of a recorded run: Chrome Trace Event JSON (Perfetto, chrome://tracing), and pictures.

Perfetto: one track (a "thread") per task, named after it, with its steps, waits and ready time
as slices in order (they never overlap on one task, so they nest trivially); a track per worker
thread; an "event loop" track with busy, idle and blocked slices; flows from the task that woke
another (where the wake-up happened inside a step) to the step it woke.

Pictures (svg, png, txt) print the app's own rows through a Rich console, so they look like the
app. That part imports the painter (Rich, no Textual), and only when a picture is asked for.

`FORMATS` is the one table of what `loopviz export --format` offers: a new format is a function
here and one entry there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from loopviz import events as ev
from loopviz import model
from loopviz.model import Lane, Timeline
from loopviz.replay import culprit_words

PID = 1
LOOP_TID = 1
FIRST_TASK_TID = 1000
FIRST_THREAD_TID = 100


def _us(ns: int) -> float:
    return ns / 1000


def _slices(lane: Lane, tid: int, end_t: int,
            name_of: Callable[[model.Span], str]) -> list[dict[str, Any]]:  # fmt: skip
    slices = []
    for span in lane.spans:
        end = span.end if span.end is not None else end_t
        slices.append({
            "ph": "X", "pid": PID, "tid": tid, "ts": _us(span.start),
            "dur": max(_us(end - span.start), 0.001), "name": name_of(span),
            "cat": span.state, "args": {"state": span.state, "label": span.label},
        })  # fmt: skip
    return slices


def _task_slice_name(span: model.Span) -> str:
    if span.state in (model.WAITING, model.READY) and span.label:
        return f"{span.state}: {span.label}"
    return span.state


def perfetto(timeline: Timeline, title: str = "loopviz") -> dict[str, Any]:
    """The run as a Chrome Trace Event JSON object."""
    end_t = timeline.end_t
    events: list[dict[str, Any]] = [
        {"ph": "M", "pid": PID, "name": "process_name", "args": {"name": title}},
        {"ph": "M", "pid": PID, "tid": LOOP_TID, "name": "thread_name",
         "args": {"name": "event loop"}},
        {"ph": "M", "pid": PID, "tid": LOOP_TID, "name": "thread_sort_index",
         "args": {"sort_index": 0}},
    ]  # fmt: skip
    events += _slices(timeline.loop, LOOP_TID, end_t, lambda span: span.state)
    for block in timeline.blocks:
        end = block.end if block.end is not None else end_t
        culprit = culprit_words(block)
        events.append({
            "ph": "i", "s": "t", "pid": PID, "tid": LOOP_TID, "ts": _us(block.start),
            "name": f"BLOCKED {(end - block.start) / 1e6:.0f} ms: {culprit}", "cat": "block",
            "args": {"task": timeline.display_name(block.task), "stack": block.stack,
                     "duration_ms": (end - block.start) / 1e6},
        })  # fmt: skip
    tids: dict[int, int] = {}
    for index, lane in enumerate(timeline.tasks.values()):
        tid = tids[lane.id] = FIRST_TASK_TID + index
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_name",
                       "args": {"name": f"{lane.label} (task {lane.id})"}})  # fmt: skip
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_sort_index",
                       "args": {"sort_index": 10 + index}})  # fmt: skip
        events += _slices(lane, tid, end_t, _task_slice_name)
        if lane.done_at is not None:
            ending = f"{lane.outcome} {lane.detail}".strip()
            events.append({"ph": "i", "s": "t", "pid": PID, "tid": tid, "ts": _us(lane.done_at),
                           "name": ending, "cat": "done"})  # fmt: skip
    for index, (name, thread) in enumerate(timeline.threads.items()):
        tid = FIRST_THREAD_TID + index
        events.append({"ph": "M", "pid": PID, "tid": tid, "name": "thread_name",
                       "args": {"name": f"{thread.label} ({name})"}})  # fmt: skip
        events += _slices(thread, tid, end_t, lambda span: span.label or "job")
    events += _flows(timeline, tids)
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"generator": "loopviz", "title": title}}  # fmt: skip


def _flows(timeline: Timeline, tids: dict[int, int]) -> list[dict[str, Any]]:
    """An arrow from the step that woke a task to the step it woke, where a step did the waking
    (a lock released, an event set, a result returned); wake-ups from timers have no waker."""
    flows: list[dict[str, Any]] = []
    running: int | None = None
    pending: dict[int, tuple[int, int]] = {}  # woken task -> (flow id, waker)
    next_id = 1
    for event in timeline.events:
        if isinstance(event, ev.Resume):
            task = event.task
            if task in pending:
                flow_id, _waker = pending.pop(task)
                flows.append({"ph": "f", "bp": "e", "id": flow_id, "pid": PID, "tid": tids[task],
                              "ts": _us(event.t), "name": "wakes", "cat": "wake"})  # fmt: skip
            running = task
        elif isinstance(event, (ev.Suspend, ev.Done)):
            running = None
        elif (
            isinstance(event, ev.Ready)
            and event.cause == "woken"
            and running is not None
            and running != event.task
            and event.task in tids
            and running in tids
        ):
            task = event.task
            flows.append({"ph": "s", "id": next_id, "pid": PID, "tid": tids[running],
                          "ts": _us(event.t), "name": "wakes", "cat": "wake"})  # fmt: skip
            pending[task] = (next_id, running)
            next_id += 1
    return flows


def write_perfetto(timeline: Timeline, path: Path, title: str) -> None:
    Path(path).write_text(json.dumps(perfetto(timeline, title)))


def picture(timeline: Timeline, fmt: str, path: Path, title: str, width: int = 160,
            theme_name: str = "default") -> None:  # fmt: skip
    """The whole run as the app draws it: svg, png (needs cairosvg) or txt."""
    from rich.console import Console
    from rich.segment import Segment
    from rich.text import Text

    from loopviz.compare import describe
    from loopviz.painter import THEMES, Painter, Viewport

    painter = Painter(THEMES[theme_name])
    moment = painter.moment(timeline)  # the whole run, at its end
    lanes = timeline.visible_tasks(moment.t)
    labels = [lane.label for lane in lanes] + [lane.label for lane in timeline.threads.values()]
    painter.gutter = painter.gutter_for(labels, width)
    cells = max(width - painter.gutter, 20)
    view = Viewport(0, max(timeline.end_t * 1.02 / cells, 1), cells)
    rows = [painter.axis_row(timeline, view, moment=moment),
            painter.loop_row(timeline, view, moment)]  # fmt: skip
    rows += [painter.task_row(timeline, lane, view, moment=moment) for lane in lanes]
    rows += [painter.thread_row(timeline, lane, lane.label, view, moment)
             for lane in timeline.threads.values()]  # fmt: skip
    console = Console(record=True, width=width, file=open(_devnull(), "w"),  # noqa: SIM115
                      color_system=None if fmt == "txt" else "truecolor")  # fmt: skip
    console.print(Text(describe(title, timeline), style="bold"))
    for row in rows:
        console.print(Text.assemble(*((s.text, s.style or "") for s in row
                                      if isinstance(s, Segment))),
                      no_wrap=True, crop=True)  # fmt: skip
    if fmt == "txt":
        Path(path).write_text(console.export_text())
        return
    svg = console.export_svg(title=title)
    if fmt == "svg":
        Path(path).write_text(svg)
        return
    if not svg_to_png(svg, Path(path), width * 10):
        raise RuntimeError("PNG export needs cairosvg: pip install 'loopviz[docs]'")


@dataclass(frozen=True)
class Request:
    """What an export was asked for, besides its format and file."""

    title: str
    width: int = 160  # pictures: cells across
    theme: str = "default"  # pictures: a painter theme


def _perfetto_file(timeline: Timeline, path: Path, request: Request) -> None:
    write_perfetto(timeline, path, request.title)


def _picture_file(fmt: str, timeline: Timeline, path: Path, request: Request) -> None:
    picture(timeline, fmt, path, request.title, request.width, request.theme)


# Each format `loopviz export` writes: its writer, and what it is for people (the CLI's help).
# A writer may raise RuntimeError with one sentence for the user (a missing optional package).
FORMATS: dict[str, tuple[Callable[[Timeline, Path, Request], None], str]] = {
    "perfetto": (_perfetto_file, "Chrome Trace Event JSON for Perfetto and chrome://tracing"),
    "svg": (partial(_picture_file, "svg"), "a picture of the whole timeline"),
    "png": (partial(_picture_file, "png"), "the same picture as PNG (needs cairosvg)"),
    "txt": (partial(_picture_file, "txt"), "the same picture as plain text"),
}


def svg_to_png(svg: str, path: Path, width_px: int) -> bool:
    """Convert with cairosvg if it is installed (False if not). The SVG asks for Fira Code,
    often missing, and a proportional fallback font would misplace every cell."""
    try:
        import cairosvg
    except ImportError:
        return False
    svg = svg.replace("Fira Code", "DejaVu Sans Mono")
    cairosvg.svg2png(bytestring=svg.encode(), write_to=str(path), output_width=width_px)
    return True


def _devnull() -> str:
    import os

    return os.devnull
