"""Every scenario, recorded for real, must show what its story claims.

Each scenario is recorded once per test session (``recorded``) and its claims are checked on the
trace: timings with margins wide enough for a shared machine, orders and counts exactly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache

import pytest

from conftest import SCENARIOS, Recording, record_file

MS = 1_000_000
S = 1_000_000_000


@cache
def _recordings_dir():
    import tempfile

    return tempfile.mkdtemp(prefix="loopviz-scenarios-")


@cache
def recorded(name: str) -> Recording:
    from pathlib import Path

    return record_file(SCENARIOS / f"{name}.py", Path(_recordings_dir()) / f"{name}.jsonl")


def lanes(rec: Recording, prefix: str = ""):
    return [lane for lane in rec.timeline.tasks.values() if lane.name.startswith(prefix)]


def output(rec: Recording) -> str:
    return "".join(e["text"] for e in rec.events if e["ev"] == "output")


def waits(rec: Recording, task: int) -> list[dict]:
    return [e["waiting_on"] for e in rec.events if e["ev"] == "suspend" and e["task"] == task]


def first_resume(rec: Recording, task: int) -> int:
    return next(e["t"] for e in rec.events if e["ev"] == "resume" and e["task"] == task)


def max_overlap(intervals: list[tuple[int, int]]) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = current = 0
    for _t, step in edges:
        current += step
        most = max(most, current)
    return most


def sleep_intervals(rec: Recording, task: int) -> list[tuple[int, int]]:
    """(start, end) of each sleep of the task: the suspend to the next resume."""
    spans, start = [], None
    for event in rec.events:
        if event.get("task") != task:
            continue
        if event["ev"] == "suspend" and event["waiting_on"]["kind"] == "sleep":
            start = event["t"]
        elif event["ev"] in ("resume", "done") and start is not None:
            spans.append((start, event["t"]))
            start = None
    return spans


ALL = sorted(path.stem for path in SCENARIOS.glob("*.py"))


@cache
def plain_runs() -> dict[str, tuple[int, str]]:
    """Every scenario run with plain ``python``, all at once (only their exit matters here)."""
    processes = {
        name: subprocess.Popen([sys.executable, str(SCENARIOS / f"{name}.py")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for name in ALL
    }  # fmt: skip
    return {name: (p.wait(timeout=60), p.stderr.read()) for name, p in processes.items()}


@pytest.mark.parametrize("name", ALL)
def test_every_scenario_tells_its_story_and_runs_with_plain_python(name):
    source = (SCENARIOS / f"{name}.py").read_text()
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and "Watch for:" in docstring, "open with what to watch for"
    rec = recorded(name)
    assert rec.session.exit_code == 0, output(rec)
    assert rec.timeline.end_t < 10 * S
    assert any(e["ev"] == "output" for e in rec.events), "print narrates the story"
    returncode, stderr = plain_runs()[name]
    assert returncode == 0, stderr


def test_blocking_freezes_every_task():
    rec = recorded("blocking")
    (block,) = [e for e in rec.events if e["ev"] == "block"]
    assert block["code"] == "time.sleep(2)" and block["end"] - block["start"] >= 2 * S
    inside = [e for e in rec.events
              if e["ev"] == "resume" and block["start"] < e["t"] < block["end"]]  # fmt: skip
    assert inside == []
    starved = rec.timeline.starved(rec.timeline.blocks[0], rec.timeline.end_t)
    assert {lane.name for lane in starved} == {"fast", "medium", "slow"}


def test_gather_takes_the_longest_wait_not_the_sum():
    rec = recorded("gather")
    main = rec.task_id("Task-1")
    mine = [e for e in rec.events if e.get("task") == main]
    gather = next(e for e in mine if e["ev"] == "suspend" and e["waiting_on"]["kind"] == "gather")
    resumed = next(e["t"] for e in mine if e["ev"] == "resume" and e["t"] > gather["t"])
    assert 1.95 * S < resumed - gather["t"] < 2.5 * S
    assert 3.95 * S < gather["t"] < 4.6 * S  # the two sequential waits came first


def test_create_task_starts_tasks_while_main_waits_and_they_finish_by_duration():
    rec = recorded("create_task")
    main = rec.task_id("Task-1")
    main_wakes = [e["t"] for e in rec.events if e["ev"] == "resume" and e["task"] == main]
    for name in ("cocoa", "coffee", "tea"):
        assert first_resume(rec, rec.task_id(name)) < main_wakes[1]
    finished = sorted(lanes(rec), key=lambda lane: lane.done_at)
    assert [lane.name for lane in finished if lane.name != "Task-1"][:3] == [
        "tea",
        "coffee",
        "cocoa",
    ]


def test_gather_returns_in_argument_order():
    rec = recorded("gather_order")
    done = sorted((lane.done_at, lane.detail) for lane in lanes(rec) if lane.coro == "lookup")
    assert [detail for _t, detail in done] == [
        "'fast.example'", "'quick.example'", "'medium.example'", "'slow.example'"]  # fmt: skip
    assert "['slow.example', 'medium.example', 'quick.example', 'fast.example']" in output(rec)


def test_offload_keeps_the_loop_free_and_shows_a_thread():
    rec = recorded("offload")
    assert not rec.timeline.blocks
    starts = [e for e in rec.events if e["ev"] == "thread_start"]
    assert [e["func"] for e in starts] == ["write_report()"]
    assert starts[0]["task"] == rec.task_id("reporter")
    end = next(e["t"] for e in rec.events if e["ev"] == "thread_end")
    ticks = [e for e in rec.events if e["ev"] == "resume" and starts[0]["t"] < e["t"] < end]
    assert len(ticks) >= 8  # the tickers kept running while the thread worked


def test_executors_run_jobs_side_by_side_in_threads_and_processes():
    rec = recorded("executors")
    assert not rec.timeline.blocks
    jobs: dict[str, list[tuple[int, int]]] = {"thread": [], "process": []}
    opened = {}
    for event in rec.events:
        if event["ev"] == "thread_start":
            opened[event["job"]] = event
        elif event["ev"] == "thread_end":
            start = opened.pop(event["job"])
            kind = "process" if event["thread"].startswith("process") else "thread"
            jobs[kind].append((start["t"], event["t"]))
    assert len(jobs["thread"]) == 8 and len(jobs["process"]) == 4
    assert max_overlap(jobs["thread"][:4]) == 4  # the downloads overlap
    assert max_overlap(jobs["process"]) >= 2  # processes run at the same time


def test_cpu_bound_code_blocks_like_time_sleep():
    rec = recorded("cpu_bound")
    (block,) = rec.timeline.blocks
    assert block.end - block.start > 0.9 * S
    assert rec.timeline.display_name(block.task) == "crunch"
    source = (SCENARIOS / "cpu_bound.py").read_text().splitlines()
    line = int(block.where.rsplit(":", 1)[1])
    assert "total += i * i" in source[line - 1] or "for i in range" in source[line - 1]
    ticker = rec.task_id("ticker")
    assert not [e for e in rec.events if e["ev"] == "resume" and e["task"] == ticker
                and block.start < e["t"] < block.end]  # fmt: skip


def test_semaphore_lets_at_most_three_in():
    rec = recorded("semaphore")
    downloads = lanes(rec, "download-")
    inside = [span for lane in downloads for span in sleep_intervals(rec, lane.id)]
    assert len(inside) == 8 and max_overlap(inside) == 3
    queued = [w for lane in downloads for w in waits(rec, lane.id) if w["kind"] == "semaphore"]
    assert len(queued) >= 5 and len({w["obj"] for w in queued}) == 1


def test_lock_serialises_the_tellers():
    rec = recorded("lock")
    assert "without a lock: balance 10 (expected 50)" in output(rec)
    assert "with a lock: balance 50 (expected 50)" in output(rec)
    tellers = lanes(rec, "teller-")
    assert max_overlap([s for lane in tellers for s in sleep_intervals(rec, lane.id)]) == 1
    contended = [w for lane in tellers for w in waits(rec, lane.id) if w["kind"] == "lock"]
    assert len(contended) == 4 and len({w["obj"] for w in contended}) == 1


def test_queue_producer_consumer_join_and_cancel():
    rec = recorded("producer_consumer")
    producer_waits = [w["label"] for w in waits(rec, rec.task_id("producer"))]
    assert "queue.put (full 3/3)" in producer_waits
    main_waits = [w["label"] for w in waits(rec, rec.task_id("Task-1"))]
    assert any(label.startswith("queue.join") for label in main_waits)
    assert {lane.outcome for lane in lanes(rec, "worker-")} == {"cancelled"}
    assert output(rec).count("finished job") == 10


def test_event_releases_every_waiter_at_once():
    rec = recorded("event_release")
    runners = lanes(rec, "runner-")
    assert len({waits(rec, lane.id)[0]["obj"] for lane in runners}) == 1
    ready = [e["t"] for e in rec.events
             if e["ev"] == "ready" and e["task"] in {lane.id for lane in runners}
             and e.get("cause") == "woken"]  # fmt: skip
    assert len(ready) == 6 and max(ready) - min(ready) < 5 * MS


def test_async_context_managers_set_up_and_tear_down_with_awaits():
    lines = output(recorded("context_managers")).splitlines()
    assert lines[:3] == ["db: connected", "tx-1: begin", "main: working with db"]
    assert lines[3:5] == ["tx-1: commit", "db: closed"]
    assert lines[-3:] == ["search: closed", "queue: closed", "cache: closed"]


def test_async_for_awaits_between_items_and_lets_others_run():
    rec = recorded("async_iterators")
    reader, clock = rec.task_id("reader"), rec.task_id("clock")
    assert len(waits(rec, reader)) >= 13
    reader_steps = [e["t"] for e in rec.events if e["ev"] == "resume" and e["task"] == reader]
    clock_steps = [e["t"] for e in rec.events if e["ev"] == "resume" and e["task"] == clock]
    assert sum(reader_steps[0] < t < reader_steps[-1] for t in clock_steps) >= 5


def test_timeouts_cut_waits_short_and_cancellation_cleans_up():
    rec = recorded("timeouts")
    fetches = [lane for lane in lanes(rec) if lane.coro == "fetch"]
    assert [lane.outcome for lane in fetches] == ["cancelled"]  # wait_for's inner task
    assert 0.45 * S < fetches[0].done_at - fetches[0].created < 0.7 * S
    job = rec.timeline.tasks[rec.task_id("careful-job")]
    assert job.outcome == "cancelled" and job.steps == 3
    assert "careful job: clean" in output(rec)


def test_task_group_failure_cancels_the_siblings():
    rec = recorded("taskgroup")
    flaky = rec.timeline.tasks[rec.task_id("flaky")]
    siblings = [rec.timeline.tasks[rec.task_id(n)] for n in ("steady-1", "steady-2")]
    assert (flaky.outcome, flaky.detail) == (
        "raised",
        "ConnectionError: flaky: lost the connection",
    )
    assert [s.outcome for s in siblings] == ["cancelled", "cancelled"]
    assert all(0 <= s.done_at - flaky.done_at < 50 * MS for s in siblings)
    assert "main: the group failed with ['flaky: lost the connection']" in output(rec)


def test_gather_exceptions_propagate_first_or_come_back_as_values():
    rec = recorded("gather_exceptions")
    by_detail = {lane.detail: lane for lane in lanes(rec) if lane.coro == "job"}
    main = rec.task_id("Task-1")
    woke = [e["t"] for e in rec.events if e["ev"] == "resume" and e["task"] == main]
    failed_b = by_detail["ValueError: b failed"].done_at
    after_b = min(t for t in woke if t >= failed_b)
    assert by_detail["'a'"].done_at > after_b  # main went on while a was still running
    assert "['d', ValueError('e failed'), 'f']" in output(rec)


def test_one_blocking_endpoint_stalls_the_whole_server():
    rec = recorded("web_server")
    blocks = rec.timeline.blocks
    assert len(blocks) == 3 and all(b.code == "time.sleep(0.5)" for b in blocks)
    assert all(b.end - b.start >= 0.49 * S for b in blocks)
    threads = [e for e in rec.events if e["ev"] == "thread_start"]
    assert [e["func"] for e in threads] == ["endpoint_sync()"] * 3
    text = output(rec)
    assert "/blocking: 3 requests in 1.5" in text


def test_ten_thousand_tasks_wait_together():
    rec = recorded("ten_thousand")
    waiters = [lane for lane in rec.timeline.tasks.values() if lane.coro == "wait_a_bit"]
    assert len(waiters) == 10_000 and {lane.outcome for lane in waiters} == {"returned"}
    first_done = min(lane.done_at for lane in waiters)
    assert max(lane.created for lane in waiters) < first_done  # all 10,000 waited at once


def test_uvloop_scenario_runs_on_both_loops_or_says_why_not():
    rec = recorded("uvloop_compare")
    loops = [e["impl"] for e in rec.events if e["ev"] == "loop"]
    try:
        import uvloop  # noqa: F401
    except ImportError:
        assert loops == ["asyncio"] and "uvloop is not installed" in output(rec)
    else:
        assert loops == ["asyncio", "uvloop"] and "uvloop:" in output(rec)
