"""Which line of which file the source pane shows at the cursor, and reading that file safely.

The lanes say *when* each task ran and waited; the source pane says *where*. Everything it needs
is in the events: the await line of each suspend (``waiting_on.where``), a block's culprit line
(``where``), a task's spawn site (``create.where``). This module picks the line for the event at
the cursor, finds the file, checks it against the digest the recording took (``source`` events,
docs/trace-format.md), and says in one sentence when it cannot be shown as it ran.

Pure Python with no UI import. Files are only ever read, never imported or executed.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import tokenize
from dataclasses import dataclass
from pathlib import Path

from loopviz import events as ev
from loopviz.awaittree import WaitState
from loopviz.model import Timeline
from loopviz.viewstate import ViewState

LOOKAHEAD = 20_000  # events searched for the end of a running step
LOOKBACK = 4_096  # events searched back for the start of a step that ends its task
MAX_SOURCE_BYTES = 4 << 20  # a "source file" bigger than this is not shown
SOURCE_SUFFIXES = (".py", ".pyw")  # a trace may name any path: only Python sources are read


def split_where(where: str) -> tuple[str, int] | None:
    """``scenarios/blocking.py:25`` -> (``scenarios/blocking.py``, 25); None if it is not one."""
    file, _, line = where.rpartition(":")
    return (file, int(line)) if file and line.isdigit() else None


@dataclass(frozen=True)
class Focus:
    """The line the pane centres on, and why: ``block`` (the culprit of a block going on; ``held``
    at a block's end), ``await``
    (where a task suspends), ``running`` (the await that ends the running step), ``resumed``
    (where a step that ends its task began), ``spawn`` (where a task is created), ``paused``
    (where the event's task is paused)."""

    file: str
    line: int
    why: str
    task: int | None
    words: str  # the pane's title: "reporter blocks the loop here"


_WORDS = {
    "block": "{name} blocks the loop here",
    "held": "{name} held the loop here",
    "await": "{name} awaits here",
    "running": "{name} runs up to here",
    "resumed": "{name} runs on from here",
    "spawn": "{name} is created here",
    "paused": "{name} is paused here",
}


def _focus(timeline: Timeline, where: str, why: str, task: int | None) -> Focus | None:
    found = split_where(where)
    if found is None:
        return None
    words = _WORDS[why].format(name=timeline.display_name(task))
    return Focus(found[0], found[1], why, task, words)


def focus_at(timeline: Timeline, index: int, waits: WaitState, view: ViewState) -> Focus | None:
    """The line for the event at ``index`` (the cursor's event; live, the newest), the view's
    horizon being that moment: the culprit during a block, the await line of a suspend, the
    running step's line (where that step will next await), else the spawn site or the await line
    of the event's task. None when the event has no line (an idle, the program's output)."""
    if index < 0:
        return None
    event = timeline.events[index]
    task = ev.task_of(event)
    block = timeline.current_block(view.horizon, view.live)
    if block is not None and block.where:
        return _focus(timeline, block.where, "block", block.task)
    if isinstance(event, (ev.Block, ev.BlockBegin)) and event.where:
        return _focus(timeline, event.where, "held", task)
    if isinstance(event, ev.Suspend):
        return _focus(timeline, event.waiting_on.where, "await", task)
    if isinstance(event, ev.Create):
        return _focus(timeline, event.where, "spawn", task)
    running = timeline.running_at(view.horizon)
    if running:
        return _running_line(timeline, index, running[0].id)
    paused = waits.paused.get(task) if task is not None else None
    if paused is not None:
        return _focus(timeline, paused.where, "paused", task)
    return None


def _running_line(timeline: Timeline, index: int, task: int) -> Focus | None:
    """A running step's line: the await that ends it; for a last step (it returns), the await it
    resumed from."""
    events = timeline.events
    for event in events.iter_range(index + 1, index + 1 + LOOKAHEAD):
        if isinstance(event, ev.Suspend) and event.task == task:
            return _focus(timeline, event.waiting_on.where, "running", task)
        if isinstance(event, ev.Done) and event.task == task:
            break
    before = list(events.iter_range(max(index - LOOKBACK, 0), index + 1))
    for event in reversed(before):
        if isinstance(event, ev.Suspend) and event.task == task:
            return _focus(timeline, event.waiting_on.where, "resumed", task)
    return None


def paused_at(
    waits: WaitState, file: str, first: int, last: int, named: int = 4
) -> dict[int, tuple[list[int], int]]:
    """Tasks paused on lines ``first``..``last`` of ``file``: by line, the first ``named`` task
    ids in creation order, and how many tasks in all."""
    marks: dict[int, tuple[list[int], int]] = {}
    for where, tasks in waits.by_where.items():
        found = split_where(where)
        if found is not None and found[0] == file and first <= found[1] <= last:
            marks[found[1]] = (heapq.nsmallest(named, tasks), len(tasks))
    return marks


def next_event_at(timeline: Timeline, file: str, line: int, after: int) -> int | None:
    """The index of the first event after ``after`` whose line is ``file:line`` (an await there,
    a task spawned there, a block there), wrapping round to the start; None if there is none."""
    where = f"{file}:{line}"
    events = timeline.events
    total = len(events)
    for start, stop in ((after + 1, total), (0, after + 1)):
        for i, event in enumerate(events.iter_range(start, stop), start):
            if event_where(event) == where:
                return i
    return None


def file_near(timeline: Timeline, index: int) -> str:
    """The file to show for an event with no line of its own (an idle, output, the end): the
    last file named at or before it, else the first named after it."""
    events = timeline.events
    before = list(events.iter_range(max(index - LOOKBACK, 0), index + 1))
    after = events.iter_range(index + 1, index + 1 + LOOKBACK)
    for event in (*reversed(before), *after):
        found = split_where(event_where(event))
        if found is not None:
            return found[0]
    return ""


def event_where(event: ev.AnyEvent) -> str:
    """The line an event names: a suspend's await, a block's culprit, a task's spawn site."""
    if isinstance(event, ev.Suspend):
        return event.waiting_on.where
    if isinstance(event, (ev.Create, ev.Block, ev.BlockBegin)):
        return event.where
    return ""


# -- the files ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A file as the pane can show it: its lines (None: nothing to show) and, unless it is
    exactly the file that was recorded, one sentence saying why not."""

    file: str
    lines: list[str] | None
    notice: str = ""
    path: Path | None = None


class SourceFiles:
    """Finds and reads the files a trace names, once each, when first shown.

    With the trace's ``source`` event for a file, it looks at the path recorded and then at the
    file's display path from ``cwd``, and prefers the one whose SHA-256 matches the recording.
    Without one (an older trace), it looks from ``cwd`` and says the file cannot be checked."""

    def __init__(self, timeline: Timeline, cwd: Path | None = None) -> None:
        self.timeline = timeline
        self.cwd = cwd or Path.cwd()
        self._read: dict[str, Source] = {}

    def get(self, file: str) -> Source:
        source = self._read.get(file)
        if source is None:
            source = self._read[file] = self._load(file)
        return source

    def _load(self, file: str) -> Source:
        if not file.endswith(SOURCE_SUFFIXES):
            return Source(file, None, f"{file} is not a Python source file, so it is not shown.")
        recorded = self.timeline.sources.get(file)
        candidates = [self.cwd / file]
        if recorded is not None and recorded.path:
            candidates.insert(0, Path(recorded.path))
        found: list[tuple[Path, bytes]] = []
        error = ""
        for path in dict.fromkeys(candidates):
            try:
                if path.is_file() and path.stat().st_size <= MAX_SOURCE_BYTES:
                    found.append((path, path.read_bytes()))
                elif path.is_file():
                    error = f"{file} is too big to show ({path.stat().st_size:,} bytes)."
            except OSError as failure:
                error = f"{file} cannot be read: {failure.strerror or failure}."
        if not found:
            if error:
                return Source(file, None, error)
            if recorded is not None:
                where = recorded.path or file
                return Source(file, None, f"{file} is not on this machine (it was {where}).")
            return Source(file, None, f"{file} cannot be found from {self.cwd}.")
        if recorded is None:
            path, data = found[0]
            notice = f"Not checked: the trace has no digest of {file}."
            return Source(file, _lines(data), notice, path)
        digest = recorded.sha256
        for path, data in found:
            if hashlib.sha256(data).hexdigest() == digest:
                return Source(file, _lines(data), "", path)
        path, data = found[0]
        notice = f"{file} changed since the recording: lines may differ from the run."
        return Source(file, _lines(data), notice, path)


def _lines(data: bytes) -> list[str]:
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:
        encoding = "utf-8"
    try:
        text = data.decode(encoding, errors="replace")
    except LookupError:
        text = data.decode("utf-8", errors="replace")
    return text.expandtabs(4).splitlines()
