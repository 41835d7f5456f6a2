"""Who awaits whom at any moment of a run: the waits at the cursor, and the await tree.

Python 3.14's ``python -m asyncio pstree PID`` prints this tree for a live process, once; here it
is worked out from the events for any moment of a recording, past included. The source pane uses
the same waits to mark the line each paused task is on.

Pure Python with no UI import. ``WaitIndex`` keeps, for an event index, which tasks are suspended,
at which ``where`` and on what kind of wait (and which worker-thread jobs are running). Like the
replay's loop queues it is built by applying events from the nearest known state: the last answer
when stepping forward, else a checkpoint kept every CHECKPOINT_EVERY events. So a step costs what
the step changes, and a seek at most CHECKPOINT_EVERY events, however many tasks the run has.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

from loopviz import model
from loopviz.model import Timeline

CHECKPOINT_EVERY = 50_000  # events between saved states (a state is ~32 bytes a suspended task)
LINKS = frozenset({"task", "gather", "thread"})  # wait kinds that make an edge of the tree


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
    jobs: dict[int, tuple[str, str]] = field(default_factory=dict)  # thread job -> (thread, func)

    def apply(self, i: int, event: dict) -> None:
        kind = event["ev"]
        if kind == "suspend":
            wait = event.get("waiting_on") or {}
            self._pause(event["task"], Paused(i, wait.get("where") or "", wait.get("kind", "")))
        elif kind in ("resume", "done"):
            self._unpause(event.get("task"))
        elif kind == "thread_start":
            self.jobs[event.get("job", -1)] = (event.get("thread", ""), event.get("func", ""))
        elif kind == "thread_end":
            self.jobs.pop(event.get("job", -1), None)
        self.index = i

    def _pause(self, task: int, paused: Paused) -> None:
        self._unpause(task)
        self.paused[task] = paused
        self.by_where.setdefault(paused.where, {})[task] = None

    def _unpause(self, task: int | None) -> None:
        paused = self.paused.pop(task, None) if task is not None else None
        if paused is not None:
            here = self.by_where.get(paused.where)
            if here is not None:
                here.pop(task, None)
                if not here:
                    del self.by_where[paused.where]


class WaitIndex:
    """The waits after any event index of a timeline (live: its newest event)."""

    def __init__(self, timeline: Timeline) -> None:
        self.timeline = timeline
        self._state = WaitState()
        self._strings: dict[str, str] = {}  # one copy of each where and kind the states share
        # event index -> (tasks, suspend indices, wheres, kinds, jobs) after it
        self._checkpoints: dict[int, tuple[array, array, list[str], list[str], dict]] = {}

    def at(self, index: int) -> WaitState:
        """The state just after event ``index`` (-1: before the first event)."""
        index = min(index, len(self.timeline.events) - 1)
        state = self._state
        if state.index > index or index - state.index > CHECKPOINT_EVERY:
            state = self._restore(index)
        events = self.timeline.events.iter_range(state.index + 1, index + 1)
        strings = self._strings
        for i, event in enumerate(events, state.index + 1):
            if event["ev"] == "suspend":  # share the strings: states and checkpoints keep them
                wait = event.get("waiting_on") or {}
                where = wait.get("where") or ""
                kind = wait.get("kind", "")
                paused = Paused(i, strings.setdefault(where, where), strings.setdefault(kind, kind))
                state._pause(event["task"], paused)
                state.index = i
            else:
                state.apply(i, event)
            if (i + 1) % CHECKPOINT_EVERY == 0 and i not in self._checkpoints:
                self._checkpoints[i] = self._save(state)
        self._state = state
        return state

    @staticmethod
    def _save(state: WaitState) -> tuple[array, array, list[str], list[str], dict]:
        paused = state.paused
        return (array("q", paused), array("q", (p.index for p in paused.values())),
                [p.where for p in paused.values()], [p.kind for p in paused.values()],
                dict(state.jobs))  # fmt: skip

    def _restore(self, index: int) -> WaitState:
        at = (index + 1) // CHECKPOINT_EVERY * CHECKPOINT_EVERY - 1
        while at >= 0 and at not in self._checkpoints:
            at -= CHECKPOINT_EVERY
        state = WaitState()
        if at >= 0:
            tasks, indices, wheres, kinds, jobs = self._checkpoints[at]
            for task, i, where, kind in zip(tasks, indices, wheres, kinds, strict=True):
                state._pause(task, Paused(i, where, kind))
            state.jobs = dict(jobs)
            state.index = at
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
    def __init__(self, timeline: Timeline, waits: WaitState, t: int, limit: int) -> None:
        self.timeline = timeline
        self.waits = waits
        self.t = t
        self.limit = limit
        self.block = timeline.current_block()
        self.nodes = 0

    def wait_of(self, task: int) -> dict:
        paused = self.waits.paused.get(task)
        if paused is None:
            return {}
        return self.timeline.events[paused.index].get("waiting_on") or {}

    def awaited(self) -> set[int]:
        """Tasks some suspended task awaits (directly or through a group): never roots."""
        found: set[int] = set()
        for task, paused in self.waits.paused.items():
            if paused.kind in ("task", "gather"):
                wait = self.wait_of(task)
                found.update(_ints(wait.get("children", ())))
                if isinstance(wait.get("target"), int):
                    found.add(wait["target"])
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
        label = str(wait.get("label", ""))
        seen = seen | {task}
        kind = paused.kind
        if kind == "task" and isinstance(wait.get("target"), int):
            child = self.task_node(wait["target"], seen)
            return Node("task", name, task, state, children=(child,))
        if kind == "gather":
            self.nodes += 1  # the group's own row
            children, more = self.children(sorted(_ints(wait.get("children", ()))), seen)
            group = Node("group", label or "gather", children=children, more=more)
            return Node("task", name, task, state, children=(group,))
        if kind == "thread":
            job = self.waits.jobs.get(wait.get("job", -1))
            thread = Node("thread", f"{job[1]} on {job[0]}" if job else label or "thread")
            self.nodes += 1
            return Node("task", name, task, state, children=(thread,))
        return Node("task", name, task, state, label)

    def children(self, tasks: list[int], seen: frozenset[int]) -> tuple[tuple[Node, ...], int]:
        nodes = []
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


def await_tree(timeline: Timeline, waits: WaitState, t: int, limit: int = 10**9) -> Tree:
    """The await tree at ``t`` (``waits`` being the state at the event at ``t``): every live
    task that no task awaits is a root; a task awaiting a task has it as its child, one awaiting
    a gather/TaskGroup/wait has a group node with the children, one awaiting a worker thread a
    thread node. Children are in creation order. About ``limit`` nodes at most are made; the
    rest are counted in ``more``."""
    builder = _Builder(timeline, waits, t, limit)
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


def _ints(values: object) -> list[int]:
    return [v for v in values if isinstance(v, int)] if isinstance(values, list | tuple) else []
