"""The recorder, end to end: tiny scripts run in a real child process, exact event sequences."""

from __future__ import annotations

import subprocess
import sys

from conftest import SCENARIOS, record_file


def test_create_resume_suspend_done_for_a_child_task(record):
    rec = record(
        """
        import asyncio

        async def child():
            await asyncio.sleep(0.01)
            return 42

        async def main():
            await asyncio.create_task(child(), name="kid")

        asyncio.run(main())
        """
    )
    main, kid = rec.task_id("Task-1"), rec.task_id("kid")
    assert rec.sequence("name", "parent", "waiting_on.kind", "outcome", "detail") == [
        ("create", main, "Task-1", None, None, None, None),
        ("resume", main, None, None, None, None, None),
        ("create", kid, "kid", main, None, None, None),
        ("suspend", main, None, None, "task", None, None),
        ("resume", kid, None, None, None, None, None),
        ("suspend", kid, None, None, "sleep", None, None),
        ("ready", kid, None, None, None, None, None),  # at the sleep's deadline
        ("resume", kid, None, None, None, None, None),
        ("done", kid, None, None, None, "returned", "42"),
        ("ready", main, None, None, None, None, None),  # woken by kid's completion
        ("resume", main, None, None, None, None, None),
        ("done", main, None, None, None, "returned", "None"),
    ]
    create_kid = next(e for e in rec.events if e["ev"] == "create" and e["task"] == kid)
    assert create_kid["coro"] == "child"
    assert create_kid["where"].endswith("scenario.py:9")


def test_sleep_wait_carries_its_deadline_and_label(record):
    rec = record(
        """
        import asyncio

        async def main():
            await asyncio.sleep(0.2)
            await asyncio.sleep(1e-05)
            await asyncio.gather(asyncio.sleep(0.003))  # a sleep that is a task's own coroutine

        asyncio.run(main())
        """
    )
    suspends = [e for e in rec.events if e["ev"] == "suspend"]
    waits = [(e["waiting_on"]["label"], e["waiting_on"].get("delay_ns")) for e in suspends]
    assert waits == [
        ("sleep 0.2s", 200_000_000),
        ("sleep 1e-05s", 10_000),
        ("gather (1)", None),
        ("sleep 0.003s", 3_000_000),
    ]
    for suspend in suspends[:2] + suspends[3:]:
        resume = next(
            e for e in rec.events
            if e["ev"] == "resume" and e["task"] == suspend["task"] and e["t"] > suspend["t"]
        )  # fmt: skip
        deadline, delay = suspend["waiting_on"]["deadline"], suspend["waiting_on"]["delay_ns"]
        assert abs(deadline - (suspend["t"] + delay)) < 2_000_000
        assert deadline <= resume["t"]


def test_gather_wait_names_its_children_and_outcomes(record):
    rec = record(
        """
        import asyncio

        async def ok():
            await asyncio.sleep(0)
            return "fine"

        async def bad():
            raise ValueError("boom")

        async def main():
            results = await asyncio.gather(ok(), bad(), return_exceptions=True)
            print(results)

        asyncio.run(main())
        """
    )
    main = rec.task_id("Task-1")
    ok, bad = sorted(rec.user_tasks() - {main})
    gather = next(e for e in rec.events if e["ev"] == "suspend" and e["task"] == main)
    assert gather["waiting_on"]["kind"] == "gather"
    assert gather["waiting_on"]["children"] == [ok, bad]
    done = {e["task"]: (e["outcome"], e["detail"]) for e in rec.events if e["ev"] == "done"}
    assert done[ok] == ("returned", "'fine'")
    assert done[bad] == ("raised", "ValueError: boom")
    output = [e["text"] for e in rec.events if e["ev"] == "output"]
    assert output == ["['fine', ValueError('boom')]\n"]


def test_cancelled_task_and_plain_future(record):
    rec = record(
        """
        import asyncio

        async def forever():
            await asyncio.get_running_loop().create_future()

        async def main():
            task = asyncio.create_task(forever(), name="forever")
            await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())
        """
    )
    forever = rec.task_id("forever")
    assert rec.sequence("waiting_on.kind", "outcome", "cause") == [
        ("create", rec.task_id("Task-1"), None, None, None),
        ("resume", 1, None, None, None),
        ("create", forever, None, None, None),
        ("suspend", 1, "sleep", None, None),
        ("ready", 1, None, None, "sleep ended"),  # sleep(0): ready again at once
        ("resume", forever, None, None, None),
        ("suspend", forever, "future", None, None),
        ("resume", 1, None, None, None),
        ("ready", forever, None, None, "woken"),  # task.cancel() wakes it, inside main's step
        ("suspend", 1, "gather", None, None),
        ("resume", forever, None, None, None),
        ("done", forever, None, "cancelled", None),
        ("ready", 1, None, None, "woken"),
        ("resume", 1, None, None, None),
        ("done", 1, None, "returned", None),
    ]
    wait = next(
        e["waiting_on"] for e in rec.events if e["ev"] == "suspend" and e["task"] == forever
    )
    assert wait["where"].endswith("scenario.py:5")


def test_block_names_the_culprit_line_and_nothing_runs_during_it(record):
    rec = record(
        """
        import asyncio, time

        async def ticker():
            for _ in range(20):
                await asyncio.sleep(0.02)

        async def blocker():
            await asyncio.sleep(0.05)
            time.sleep(0.4)

        async def main():
            await asyncio.gather(ticker(), blocker())

        asyncio.run(main())
        """
    )
    blocks = [e for e in rec.events if e["ev"] == "block"]
    assert len(blocks) == 1
    block = blocks[0]
    assert block["where"].endswith("scenario.py:10")
    assert block["code"] == "time.sleep(0.4)"
    assert 0.39e9 < block["end"] - block["start"] < 0.6e9
    begin = next(e for e in rec.events if e["ev"] == "block_begin")
    assert begin["where"] == block["where"] and begin["t"] < block["end"]
    during = [
        e for e in rec.events
        if e["ev"] == "resume" and block["start"] < e["t"] < block["end"]
    ]  # fmt: skip
    assert during == []


def test_worker_thread_is_linked_to_its_task(record):
    rec = record(
        """
        import asyncio, time

        def work():
            time.sleep(0.05)
            return 1

        async def main():
            await asyncio.to_thread(work)

        asyncio.run(main())
        """
    )
    start = next(e for e in rec.events if e["ev"] == "thread_start")
    end = next(e for e in rec.events if e["ev"] == "thread_end")
    suspend = next(e for e in rec.events if e["ev"] == "suspend" and e["task"] == 1)
    assert start["func"] == "work()" and start["task"] == 1
    assert suspend["waiting_on"] == {
        "kind": "thread",
        "label": "thread work()",
        "job": start["job"],
        "where": suspend["waiting_on"]["where"],
    }
    assert 0.04e9 < end["t"] - start["t"] < 0.5e9
    assert rec.events == sorted(rec.events, key=lambda e: e["t"])


def test_scenario_runs_as_main_with_its_argv_and_folder(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 'imported from my folder'\n")
    script = tmp_path / "prog.py"
    script.write_text(
        "import sys, helper\nprint(__name__, sys.argv[1:], helper.VALUE)\nsys.exit(3)\n"
    )
    rec = record_file(script, tmp_path / "t.jsonl", args=["--flag", "x"])
    output = [e for e in rec.events if e["ev"] == "output"]
    assert [e["text"] for e in output] == ["__main__ ['--flag', 'x'] imported from my folder\n"]
    assert rec.events[-1] == {"t": rec.events[-1]["t"], "ev": "end", "exit_code": 3, "error": None}
    assert rec.session.exit_code == 3


def test_uncaught_exception_prints_the_scenarios_own_traceback(record):
    rec = record(
        """
        def fail():
            raise RuntimeError("scenario failed")

        fail()
        """
    )
    stderr = "".join(e["text"] for e in rec.events if e["ev"] == "output")
    assert "RuntimeError: scenario failed" in stderr
    assert 'scenario.py", line 5' in stderr
    assert "loopviz" not in stderr and "runpy" not in stderr
    assert rec.events[-1]["exit_code"] == 1
    assert rec.events[-1]["error"] == "RuntimeError: scenario failed"


def test_blocking_scenario_trace_points_at_the_time_sleep_line(tmp_path):
    rec = record_file(SCENARIOS / "blocking.py", tmp_path / "blocking.jsonl")
    source = (SCENARIOS / "blocking.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text.strip().startswith("time.sleep(2)"))
    blocks = [e for e in rec.events if e["ev"] == "block"]
    assert [b["where"].rsplit("/", 1)[-1] for b in blocks] == [f"blocking.py:{line}"]
    assert blocks[0]["code"] == "time.sleep(2)"
    assert rec.timeline.tasks[blocks[0]["task"]].name == "reporter"


def test_exception_in_a_task_is_shown_without_loopviz_frames(record):
    rec = record(
        """
        import asyncio

        async def main():
            await asyncio.sleep(0)
            raise ValueError("in a task")

        asyncio.run(main())
        """
    )
    stderr = "".join(e["text"] for e in rec.events if e["ev"] == "output")
    assert stderr.startswith("Traceback (most recent call last):")
    assert 'scenario.py", line 6, in main' in stderr
    assert stderr.rstrip().endswith("ValueError: in a task")
    assert "loopviz" not in stderr
    done = next(e for e in rec.events if e["ev"] == "done")
    assert (done["outcome"], done["detail"]) == ("raised", "ValueError: in a task")


FAITHFUL = """
import asyncio, sys

async def work(name, delay, fail=False):
    await asyncio.sleep(delay)
    if fail:
        raise ValueError(name)
    return name

async def main():
    print(await asyncio.gather(work("slow", 0.03), work("fast", 0.01)))
    print(await asyncio.gather(work("bad", 0, fail=True), return_exceptions=True))
    task = asyncio.create_task(work("named", 0))
    print(task.get_name().startswith("Task-"), repr(task.get_coro().__qualname__))
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(work("boom", 0.01, fail=True))
            group.create_task(work("sibling", 1))
    except* ValueError as errors:
        print("group:", [str(e) for e in errors.exceptions])
    await task
    print("to stderr", file=sys.stderr)
    raise SystemExit(4)

asyncio.run(main())
"""


def test_recording_does_not_change_what_the_program_does(tmp_path):
    script = tmp_path / "faithful.py"
    script.write_text(FAITHFUL)
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    rec = record_file(script, tmp_path / "faithful.jsonl")
    streams = {"stdout": "", "stderr": ""}
    for event in rec.events:
        if event["ev"] == "output":
            streams[event["stream"]] += event["text"]
    assert (streams["stdout"], streams["stderr"]) == (plain.stdout, plain.stderr)
    assert rec.session.exit_code == plain.returncode == 4


def test_a_flood_of_events_arrives_whole_and_in_order(record):
    rec = record(
        """
        import asyncio

        async def worker():
            for _ in range(10):
                await asyncio.sleep(0)

        async def main():
            await asyncio.gather(*(worker() for _ in range(3000)))

        asyncio.run(main())
        """
    )
    assert rec.session.broken_reason is None
    workers = [lane for lane in rec.timeline.tasks.values() if lane.coro == "worker"]
    assert len(workers) == 3000
    assert {(lane.outcome, lane.steps) for lane in workers} == {("returned", 11)}
    suspends = sum(1 for e in rec.events if e["ev"] == "suspend")
    assert suspends == 3000 * 10 + 1
    times = [e["t"] for e in rec.events]
    assert times == sorted(times)
