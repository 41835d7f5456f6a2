"""The timeline model: lanes and state at any time, from hand-written event lists."""

from __future__ import annotations

from conftest import typed
from loopviz import model
from loopviz.model import Timeline

MS = 1_000_000


def build(events: list[dict], threshold: int = 100 * MS) -> Timeline:
    timeline = Timeline(block_threshold_ns=threshold)
    timeline.add_events(typed(events))
    return timeline


def sleeper_events() -> list[dict]:
    """Task 1 runs 1 ms, sleeps until 100 ms, is resumed late at 150 ms, returns at 151 ms."""
    return [
        {"t": 0, "ev": "create", "task": 1, "name": "a", "coro": "a", "parent": None, "where": ""},
        {"t": 10 * MS, "ev": "resume", "task": 1},
        {"t": 11 * MS, "ev": "suspend", "task": 1,
         "waiting_on": {"kind": "sleep", "label": "sleep 0.089s", "deadline": 100 * MS}},
        {"t": 150 * MS, "ev": "resume", "task": 1},
        {"t": 151 * MS, "ev": "done", "task": 1, "outcome": "returned", "detail": "None"},
    ]  # fmt: skip


def test_state_at_time_walks_through_every_state():
    lane = build(sleeper_events()).tasks[1]
    assert lane.state_at(-1) is None
    assert lane.state_at(0) == model.READY  # created, not yet run
    assert lane.state_at(10 * MS) == model.RUNNING
    assert lane.state_at(11 * MS) == model.WAITING
    assert lane.state_at(99 * MS) == model.WAITING
    assert lane.state_at(100 * MS) == model.READY  # its sleep ended; the loop had not got to it
    assert lane.state_at(150 * MS) == model.RUNNING
    assert lane.state_at(151 * MS) == model.DONE
    assert (lane.steps, lane.busy_ns, lane.longest_step_ns) == (2, 2 * MS, MS)


def test_open_wait_past_its_deadline_reads_as_ready_live():
    timeline = build(sleeper_events()[:3])
    lane = timeline.tasks[1]
    spans = list(lane.spans_between(0, 130 * MS, 130 * MS))  # live, now at 130 ms
    assert [(s.start, s.end, s.state) for s in spans[-2:]] == [
        (11 * MS, 100 * MS, model.WAITING),
        (100 * MS, None, model.READY),
    ]
    assert lane.state_at(120 * MS) == model.READY


def test_long_step_is_blocked_and_in_progress_block_is_inferred_without_a_sample():
    events = sleeper_events()[:2]
    timeline = build(events)
    now = 50 * MS  # live: the recording is followed as it records
    assert timeline.loop_status(now, live=True) == "running"
    assert timeline.current_block(now, live=True) is None
    now = 200 * MS  # a silent child: the step has run 190 ms and nobody said a word
    block = timeline.current_block(now, live=True)
    assert (block.task, block.start, block.end) == (1, 10 * MS, None)
    assert timeline.loop_status(now, live=True) == "blocked"
    assert timeline.current_block(now) is None  # a replay at 200 ms: no word, no block
    timeline.add_events(typed([{"t": 210 * MS, "ev": "done", "task": 1, "outcome": "raised",
                          "detail": "E"}]))  # fmt: skip
    lane = timeline.tasks[1]
    assert lane.state_at(100 * MS) == model.BLOCKED
    assert timeline.loop.span_at(100 * MS).state == model.BLOCKED


def test_block_event_and_starved_tasks():
    events = [
        {"t": 0, "ev": "create", "task": 1, "name": "t", "coro": "t", "parent": None, "where": ""},
        {"t": 0, "ev": "create", "task": 2, "name": "b", "coro": "b", "parent": None, "where": ""},
        {"t": 1 * MS, "ev": "resume", "task": 1},
        {"t": 2 * MS, "ev": "suspend", "task": 1,
         "waiting_on": {"kind": "sleep", "label": "sleep", "deadline": 50 * MS}},
        {"t": 3 * MS, "ev": "resume", "task": 2},
        {"t": 110 * MS, "ev": "block_begin", "task": 2, "start": 3 * MS, "where": "x.py:3",
         "code": "time.sleep(1)", "stack": []},
    ]  # fmt: skip
    timeline = build(events)
    block = timeline.current_block(500 * MS, live=True)
    assert (block.where, block.code, block.end) == ("x.py:3", "time.sleep(1)", None)
    assert [lane.name for lane in timeline.starved(block, 500 * MS)] == ["t"]
    timeline.add_events(typed([
        {"t": 1003 * MS, "ev": "block", "task": 2, "start": 3 * MS, "end": 1003 * MS,
         "where": "x.py:3", "code": "time.sleep(1)", "stack": []},
        {"t": 1003 * MS, "ev": "suspend", "task": 2, "waiting_on": {"kind": "future", "label": ""}},
        {"t": 1004 * MS, "ev": "resume", "task": 1},
    ]))  # fmt: skip
    assert len(timeline.blocks) == 1 and timeline.blocks[0].end == 1003 * MS
    assert timeline.tasks[1].state_at(500 * MS) == model.READY
    assert timeline.tasks[2].state_at(500 * MS) == model.BLOCKED
    assert timeline.states_at(1 * MS) == {1: model.RUNNING, 2: model.READY}


def test_threads_get_lanes_named_for_their_job():
    events = [
        {"t": 0, "ev": "create", "task": 1, "name": "m", "coro": "m", "parent": None, "where": ""},
        {"t": 5, "ev": "thread_start", "thread": "w0", "job": 1, "task": 1, "func": "work()"},
        {"t": 9, "ev": "thread_end", "thread": "w0", "job": 1, "task": 1, "func": "work()"},
    ]
    lane = build(events).threads["w0"]
    assert [(s.start, s.end, s.label) for s in lane.spans] == [(5, 9, "work() ← m")]


def test_a_late_watchdog_sample_for_a_step_already_over_is_ignored():
    events = sleeper_events()[:3]  # the 1 ms step at 10 ms has ended
    events.append({"t": 300 * MS, "ev": "block_begin", "task": 1, "start": 10 * MS,
                   "where": "x.py:1", "code": "pass", "stack": []})  # fmt: skip
    timeline = build(events)
    assert timeline.blocks == [] and timeline.current_block(400 * MS, live=True) is None


def test_after_the_detail_ends_lanes_are_closed_and_a_block_is_still_taken():
    timeline = Timeline()
    timeline.add_events(typed([
        {"t": 0, "ev": "create", "task": 1, "name": "a", "coro": "a", "parent": None, "where": ""},
        {"t": 1 * MS, "ev": "resume", "task": 1},
    ]))  # fmt: skip
    timeline.end_detail()
    assert timeline.tasks[1].current is None and timeline.loop.current is None
    assert timeline.detail_until == 1 * MS
    timeline.add_events(typed([{"t": 500 * MS, "ev": "block_begin", "task": 1, "start": 300 * MS,
                          "where": "x.py:3", "code": "time.sleep(1)", "stack": []}]))  # fmt: skip
    block = timeline.current_block(600 * MS, live=True)
    assert block is not None and (block.code, block.start, block.end) == (
        "time.sleep(1)",
        300 * MS,
        None,
    )
