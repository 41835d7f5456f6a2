"""Who awaits whom at any moment of a run: the waits at the cursor, and the await tree.

Python 3.14's ``python -m asyncio pstree PID`` prints this tree for a live process, once; here it
is worked out from the events for any moment of a recording, past included. The source pane uses
the same waits to mark the line each paused task is on.

Pure Python with no UI import. ``WaitIndex`` keeps, for an event index, which tasks are suspended,
at which ``where`` and on what kind of wait. A step forward applies the events stepped over. Any
other move (back, or far ahead) rebuilds the state from the timeline model instead of from the
events: each task's lane says whether it is waiting then and since when, which names its suspend
event. So a seek costs a lookup per task, never a pass over the run (a million events take over a
second just to decode), and nothing is kept per event.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field

from loopviz import events as ev
from loopviz import model
from loopviz.model import OPEN, Timeline

JOB_LOOKBACK = 64  # events searched back from a suspend for the thread job it awaits
STEP_AHEAD = 20_000  # events applied one by one going forward; past this a rebuild is cheaper
_WAITING = model._STATE_CODES[model.WAITING]
_READY = model._STATE_CODES[model.READY]


@dataclass(frozen=True, slots=True)
class Paused:
    """A suspended task: the event index of its suspend, its await line and its wait's kind."""

    index: int
    where: str
    kind: str


@dataclass
class WaitState:
    """The waits just after one event. Read-only for callers: the index updates it in place."""

    index: int = -1
    paused: dict[int, Paused] = field(default_factory=dict)  # task -> its wait
    by_where: dict[str, dict[int, None]] = field(default_factory=dict)  # where -> tasks there

    def apply(self, i: int, event: ev.AnyEvent) -> None:
        if isinstance(event, ev.Suspend):
            wait = event.waiting_on
            self.pause(event.task, Paused(i, wait.where, wait.kind))
        elif isinstance(event, (ev.Resume, ev.Done)):
            self.unpause(event.task)
        self.index = i

    def pause(self, task: int, paused: Paused) -> None:
        self.unpause(task)
        self.paused[task] = paused
        here = self.by_where.get(paused.where)
        if here is None:
            here = self.by_where[paused.where] = {}
        here[task] = None

    def unpause(self, task: int) -> None:
        paused = self.paused.pop(task, None)
        if paused is not None:
            here = self.by_where[paused.where]
            del here[task]
            if not here:
                del self.by_where[paused.where]


class WaitIndex:
    """The waits after any event index of a timeline (live: its newest event)."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._state = WaitState()

    def at(self, index: int) -> WaitState:
        """The state just after event ``index`` (-1: before the first event)."""
        index = min(index, len(self.timeline.events) - 1)
        state = self._state
        if not state.index <= index <= state.index + STEP_AHEAD:
            state = self._state = self._rebuild(index)
        events = self.timeline.events.iter_range(state.index + 1, index + 1)
        for i, event in enumerate(events, state.index + 1):
            state.apply(i, event)
        return state

    def _rebuild(self, index: int) -> WaitState:
        """The state after the last event before event ``index``'s moment, from the lanes: a
        task is paused then if its lane is waiting, or ready after a wait. (Events at the same
        moment as ``index`` are then applied one by one: the lanes only know moments.)"""
        timeline, times = self.timeline, self.timeline.times
        state = WaitState()
        if index < 0:
            return state
        base = bisect_left(times, times[index]) - 1
        if base < 0:
            return state
        t = times[base]
        waits = []  # (the suspend's moment, task)
        for lane in timeline.tasks.values():
            if lane.created > t:
                break  # tasks are kept in creation order
            if lane.done_at is not None and lane.done_at <= t:
                continue
            k = bisect_right(lane.starts, t) - 1
            if k < 0 or lane.ends[k] != OPEN and lane.ends[k] <= t:
                continue
            code = lane.states[k]
            if code == _READY and k > 0 and lane.states[k - 1] == _WAITING:
                k -= 1  # ready after a wait: still at the await, since the wait began
            elif code != _WAITING:
                continue
            waits.append((lane.starts[k], lane.id))
        events = timeline.events
        for since, task in sorted(waits):  # in time order: each chunk of events decoded once
            j = bisect_left(times, since)
            while j <= base and times[j] == since:
                event = events[j]
                if isinstance(event, ev.Suspend) and event.task == task:
                    wait = event.waiting_on
                    state.pause(task, Paused(j, wait.where, wait.kind))
                    break
                j += 1
        state.index = base
        return state


# -- the tree ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One node of the await tree: a task, a group it awaits (gather, TaskGroup, wait) or a
    worker-thread job. ``more`` counts children left out past the limit asked for."""

    kind: str  # "task" | "group" | "thread"
    name: str
    task: int | None = None
    state: str = ""  # a task's: running, blocked, ready, starved, waiting, or how it ended
    wait: str = ""  # what a waiting task waits on, when no child node says it
    children: tuple[Node, ...] = ()
    more: int = 0

    def describe(self) -> str:
        if self.kind != "task":
            return self.name
        wait = f" {self.wait}" if self.wait else ""
        return f"{self.name} [{self.state}]{wait}"


@dataclass(frozen=True)
class Tree:
    roots: tuple[Node, ...]
    more: int = 0  # roots left out past the limit


class _Builder:
    def __init__(
        self, timeline: Timeline, waits: WaitState, t: int, limit: int, live: bool
    ) -> None:
        self.timeline = timeline
        self.waits = waits
        self.t = t
        self.limit = limit
        self.block = timeline.current_block(t, live)
        self.nodes = 0

    def wait_of(self, task: int) -> ev.Wait | None:
        paused = self.waits.paused.get(task)
        if paused is None:
            return None
        event = self.timeline.events[paused.index]
        return event.waiting_on if isinstance(event, ev.Suspend) else None

    def job(self, suspend: int, job: int | None) -> tuple[str, str] | None:
        """(thread, function) of a worker-thread job, from its ``thread_start`` (just before the
        suspend that awaits it)."""
        events = self.timeline.events
        for event in reversed(list(events.iter_range(max(suspend - JOB_LOOKBACK, 0), suspend))):
            if isinstance(event, ev.ThreadStart) and event.job == job:
                return event.thread, event.func
        return None

    def awaited(self) -> set[int]:
        """Tasks some suspended task awaits (directly or through a group): never roots."""
        found: set[int] = set()
        for task, paused in self.waits.paused.items():
            wait = self.wait_of(task) if paused.kind in ("task", "gather") else None
            if wait is not None:
                found.update(wait.children or ())
                if wait.target is not None:
                    found.add(wait.target)
        return found

    def state_of(self, lane: model.TaskLane) -> str:
        t = self.t
        if lane.done_at is not None and lane.done_at <= t:
            return lane.outcome or model.DONE
        state = lane.state_as_of(t, self.timeline.block_threshold_ns) or model.READY
        if state == model.READY and self.block is not None and self.block.task != lane.id:
            return "starved"
        return state

    def task_node(self, task: int, seen: frozenset[int]) -> Node:
        self.nodes += 1
        name = self.timeline.display_name(task)
        lane = self.timeline.tasks.get(task)
        if lane is None or task in seen:  # not recorded, or a cycle (never in asyncio)
            return Node("task", name, task, "?" if lane is None else "cycle")
        state = self.state_of(lane)
        paused = self.waits.paused.get(task)
        if paused is None or lane.done_at is not None and lane.done_at <= self.t:
            return Node("task", name, task, state)
        wait = self.wait_of(task)
        if wait is None:
            return Node("task", name, task, state)
        label = wait.label
        seen = seen | {task}
        kind = wait.kind
        if kind == "task" and wait.target is not None:
            child = self.task_node(wait.target, seen)
            return Node("task", name, task, state, children=(child,))
        if kind == "gather":
            self.nodes += 1  # the group's own row
            children, more = self.children(sorted(wait.children or ()), seen)
            group = Node("group", label or "gather", children=children, more=more)
            return Node("task", name, task, state, children=(group,))
        if kind == "thread":
            job = self.job(paused.index, wait.job)
            thread = Node("thread", f"{job[1]} on {job[0]}" if job else label or "thread")
            self.nodes += 1
            return Node("task", name, task, state, children=(thread,))
        return Node("task", name, task, state, label)

    def children(self, tasks: list[int], seen: frozenset[int]) -> tuple[tuple[Node, ...], int]:
        nodes: list[Node] = []
        for k, task in enumerate(tasks):
            if self.nodes >= self.limit:
                return tuple(nodes), len(tasks) - k
            nodes.append(self.task_node(task, seen))
        return tuple(nodes), 0

    def roots(self) -> Iterator[int]:
        awaited = self.awaited()
        t = self.t
        for lane in self.timeline.tasks.values():
            if lane.created > t:
                break  # tasks are kept in creation order
            if lane.internal or lane.id in awaited:
                continue
            if lane.done_at is None or lane.done_at > t:
                yield lane.id


def await_tree(
    timeline: Timeline, waits: WaitState, t: int, limit: int = 10**9, live: bool = False
) -> Tree:
    """The await tree at ``t`` (``waits`` being the state at the event at ``t``): every live
    task that no task awaits is a root; a task awaiting a task has it as its child, one awaiting
    a gather/TaskGroup/wait has a group node with the children, one awaiting a worker thread a
    thread node. Children are in creation order. About ``limit`` nodes at most are made; the
    rest are counted in ``more``. ``live``: ``t`` is now in a run still recording."""
    builder = _Builder(timeline, waits, t, limit, live)
    roots: list[Node] = []
    more = 0
    for task in builder.roots():
        if builder.nodes >= limit:
            more += 1
            continue
        roots.append(builder.task_node(task, frozenset()))
    return Tree(tuple(roots), more)


@dataclass(frozen=True)
class TreeGlyphs:
    branch: str = "├─ "
    last: str = "└─ "
    pipe: str = "│  "
    space: str = "   "
    ellipsis: str = "…"


BOX = TreeGlyphs()
ASCII = TreeGlyphs("|- ", "`- ", "|  ", "   ", "...")


def tree_rows(tree: Tree, glyphs: TreeGlyphs = BOX) -> list[tuple[str, Node | None, str]]:
    """The tree as rows of (tree-line prefix, node, text): ``node`` None for a row saying how
    many were left out."""
    rows: list[tuple[str, Node | None, str]] = []

    def visit(nodes: tuple[Node, ...], more: int, indent: str, top: bool) -> None:
        for k, node in enumerate(nodes):
            last = k == len(nodes) - 1 and not more
            prefix = "" if top else indent + (glyphs.last if last else glyphs.branch)
            rows.append((prefix, node, node.describe()))
            inner = "" if top else indent + (glyphs.space if last else glyphs.pipe)
            visit(node.children, node.more, inner, False)
        if more:
            words = f"{glyphs.ellipsis} {more:,} more"
            rows.append(("" if top else indent + glyphs.last, None, words))

    visit(tree.roots, tree.more, "", True)
    return rows


def tree_text(tree: Tree, glyphs: TreeGlyphs = BOX) -> str:
    """The tree as plain text, one node a line (what the tests compare)."""
    return "\n".join(prefix + text for prefix, _node, text in tree_rows(tree, glyphs))

