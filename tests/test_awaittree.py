"""The await tree at chosen moments of recorded traces, as exact trees; and the wait index
that feeds it (and the source pane) agreeing with a fresh pass from the start wherever it is."""

from __future__ import annotations

import random

import pytest

from conftest import REPO, typed
from loopviz import awaittree
from loopviz.awaittree import ASCII, WaitIndex, WaitState, await_tree, tree_text
from loopviz.model import Timeline
from loopviz.replay import Replay
from loopviz.trace import load_timeline

DATA = REPO / "tests" / "data"


def tree_at(name: str, seconds: float | None = None, index: int | None = None, **options) -> str:
    _trace, timeline = load_timeline(DATA / f"{name}.jsonl")
    replay = Replay(timeline)
    if index is not None:
        replay.seek_index(index)
    else:
        replay.seek_time(int(seconds * 1e9))
    waits = WaitIndex(timeline).at(replay.index)
    glyphs = options.pop("glyphs", awaittree.BOX)
    return tree_text(await_tree(timeline, waits, replay.time, **options), glyphs)


def test_blocking_before_the_block_main_awaits_the_taskgroup_of_four_tickers():
    assert tree_at("blocking", 1.0) == (
        "main [waiting]\n"
        "└─ TaskGroup (4 left)\n"
        "   ├─ fast [waiting] sleep 0.25s\n"
        "   ├─ medium [waiting] sleep 0.5s\n"
        "   ├─ slow [waiting] sleep 1s\n"
        "   └─ reporter [waiting] sleep 1.5s"
    )


def test_blocking_mid_block_the_culprit_is_blocked_and_the_tickers_starved():
    assert tree_at("blocking", 2.6) == (
        "main [waiting]\n"
        "└─ TaskGroup (4 left)\n"
        "   ├─ fast [starved] sleep 0.25s\n"
        "   ├─ medium [starved] sleep 0.5s\n"
        "   ├─ slow [starved] sleep 1s\n"
        "   └─ reporter [blocked]"
    )


def test_blocking_after_the_end_no_task_is_alive():
    assert tree_at("blocking", 7.5) == ""


def test_gather_first_a_plain_await_then_two_children_under_the_gather():
    assert tree_at("gather", 1.0) == "main [waiting] sleep 2s"
    assert tree_at("gather", 5.0) == (
        "main [waiting]\n"
        "└─ gather (2)\n"
        "   ├─ download #1 [waiting] sleep 2s\n"
        "   └─ download #2 [waiting] sleep 2s"
    )


def test_taskgroup_the_failed_child_stays_under_the_group_with_how_it_ended():
    assert tree_at("taskgroup", 0.1) == (
        "main [waiting]\n"
        "└─ TaskGroup (3 left)\n"
        "   ├─ steady-1 [waiting] sleep 3s\n"
        "   ├─ flaky [waiting] sleep 0.5s\n"
        "   └─ steady-2 [waiting] sleep 3s"
    )
    # flaky has raised; the group wakes main, then cancels steady-1 (running its except)
    assert tree_at("taskgroup", index=18) == (
        "main [ready]\n"
        "└─ TaskGroup (3 left)\n"
        "   ├─ steady-1 [running]\n"
        "   ├─ flaky [raised]\n"
        "   └─ steady-2 [waiting] sleep 3s"
    )
    assert tree_at("taskgroup", index=26) == (
        "main [ready]\n"
        "└─ TaskGroup (2 left)\n"
        "   ├─ steady-1 [cancelled]\n"
        "   └─ steady-2 [cancelled]"
    )
    assert tree_at("taskgroup", index=27) == "main [running]"  # out of the group: a leaf


def test_offload_a_task_awaiting_a_worker_thread_has_the_job_as_its_child():
    assert tree_at("offload", 1.6) == (
        "main [waiting]\n"
        "└─ TaskGroup (4 left)\n"
        "   ├─ fast [waiting] sleep 0.25s\n"
        "   ├─ medium [waiting] sleep 0.5s\n"
        "   ├─ slow [waiting] sleep 1s\n"
        "   └─ reporter [waiting]\n"
        "      └─ write_report() on asyncio_0"
    )


def test_ascii_tree_lines():
    text = tree_at("blocking", 1.0, glyphs=ASCII)
    assert text.splitlines()[1:3] == ["`- TaskGroup (4 left)", "   |- fast [waiting] sleep 0.25s"]
    assert text.isascii()


def test_a_limit_keeps_the_tree_small_and_counts_the_rest():
    assert tree_at("blocking", 1.0, limit=4) == (
        "main [waiting]\n"
        "└─ TaskGroup (4 left)\n"
        "   ├─ fast [waiting] sleep 0.25s\n"
        "   ├─ medium [waiting] sleep 0.5s\n"
        "   └─ … 2 more"
    )


def awaiting() -> Timeline:
    """waiter awaits worker (a task wait); loner is awaited by nobody; worker sleeps."""
    timeline = Timeline()
    create = {"ev": "create", "parent": None, "where": "x.py:1"}
    timeline.add_events(typed([
        {**create, "t": 1, "task": 1, "name": "waiter", "coro": "waiter"},
        {**create, "t": 2, "task": 2, "name": "worker", "coro": "worker"},
        {**create, "t": 3, "task": 3, "name": "loner", "coro": "loner"},
        {"t": 4, "ev": "resume", "task": 1},
        {"t": 5, "ev": "suspend", "task": 1,
         "waiting_on": {"kind": "task", "label": "task worker", "target": 2, "where": "x.py:9"}},
        {"t": 6, "ev": "resume", "task": 2},
        {"t": 7, "ev": "suspend", "task": 2,
         "waiting_on": {"kind": "sleep", "label": "sleep 1s", "deadline": 10**9,
                        "where": "x.py:4"}},
    ]))  # fmt: skip
    return timeline


def test_a_task_awaiting_a_task_has_it_as_its_child_and_the_unawaited_are_roots():
    timeline = awaiting()
    waits = WaitIndex(timeline).at(len(timeline.events) - 1)
    assert tree_text(await_tree(timeline, waits, 7)) == (
        "waiter [waiting]\n└─ worker [waiting] sleep 1s\nloner [ready]"
    )
    waits = WaitIndex(timeline).at(4)  # at 5, worker has not run yet: a child, ready to start
    assert tree_text(await_tree(timeline, waits, 5)) == (
        "waiter [waiting]\n└─ worker [ready]\nloner [ready]"
    )


def fresh(timeline: Timeline, index: int) -> WaitState:
    state = WaitState()
    for i, event in enumerate(timeline.events.iter_range(0, index + 1)):
        state.apply(i, event)
    return state


@pytest.mark.parametrize("name", ["blocking", "offload", "taskgroup", "warehouse", "gather"])
def test_the_wait_index_agrees_with_a_fresh_pass_after_any_move(name, monkeypatch):
    """Steps and seeks back and forth (a rebuild from the lanes past 3 events ahead here) land
    on the same waits as a pass over the events from the first."""
    monkeypatch.setattr(awaittree, "STEP_AHEAD", 3)
    _trace, timeline = load_timeline(DATA / f"{name}.jsonl")
    index = WaitIndex(timeline)
    moves = random.Random(16)
    last = len(timeline.events) - 1
    targets = [*range(-1, last + 1), *range(last, -2, -1)]  # every event, forward and back
    targets += [moves.randrange(-1, last + 1) for _ in range(100)]
    for target in targets:
        got, want = index.at(target), fresh(timeline, target)
        assert got.paused == want.paused, target
        assert got.by_where == want.by_where, target


def test_events_at_the_same_moment_are_told_apart_when_seeking_back():
    """Lanes know moments, not events: three events at t=3 must still give three states."""
    timeline = Timeline()
    create = {"ev": "create", "parent": None, "where": "x.py:1"}
    sleep = {"kind": "sleep", "label": "sleep 1s", "deadline": 10**9}
    timeline.add_events(typed([
        {**create, "t": 1, "task": 1, "name": "a", "coro": "a"},
        {**create, "t": 1, "task": 2, "name": "b", "coro": "b"},
        {"t": 2, "ev": "resume", "task": 1},
        {"t": 3, "ev": "suspend", "task": 1, "waiting_on": {**sleep, "where": "x.py:4"}},
        {"t": 3, "ev": "resume", "task": 2},
        {"t": 3, "ev": "suspend", "task": 2, "waiting_on": {**sleep, "where": "x.py:8"}},
        {"t": 4, "ev": "resume", "task": 1},
    ]))  # fmt: skip
    index = WaitIndex(timeline)
    for target in (6, 5, 4, 3, 2, 6, 3):  # every move but the first two is back: a rebuild
        got = index.at(target)
        assert (got.paused, got.by_where) == (fresh(timeline, target).paused,
                                              fresh(timeline, target).by_where)  # fmt: skip
    assert set(index.at(3).paused) == {1} and set(index.at(5).paused) == {1, 2}
