"""The recorder sees what the program did, however it did it, and changes nothing it does.

Exact event sequences for each hook: tasks made without a factory, loops made directly or run in
another thread, waits inside async generators, threads handing results back, failures inside the
recorder, and the program's own view of itself (``__file__``, output, timing).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

from conftest import record_file
from loopviz.session import Session, Target
from loopviz.summary import summarize


def test_tasks_made_every_way_are_recorded_with_their_args_and_spawn_lines(record):
    rec = record(
        """
        import asyncio

        async def work(name, delay):
            await asyncio.sleep(delay)

        def factory(loop, coro, **kwargs):
            return asyncio.Task(coro, loop=loop, **kwargs)

        async def main():
            loop = asyncio.get_running_loop()
            await asyncio.Task(work("direct", 0.01))
            await loop.create_task(work("create_task", 0.01))
            await asyncio.ensure_future(work("ensure_future", 0.01))
            await asyncio.Task(coro=work("by_name", 0.01), loop=loop)
            made = []
            loop.call_soon(lambda: made.append(asyncio.ensure_future(work("callback", 0.01))))
            await asyncio.sleep(0)
            await made[0]
            try:
                asyncio.Task(42)
            except TypeError as error:
                print(error)
            loop.set_task_factory(factory)
            await asyncio.create_task(work("factory", 0.01))

        asyncio.run(main())
        """
    )
    creates = [e for e in rec.events if e["ev"] == "create" and not e["internal"]]
    main = creates[0]["task"]
    assert [
        (e["coro"], e["args"], e["where"].rsplit(":", 1)[1], e["parent"]) for e in creates
    ] == [
        ("main", "", "27", None),
        ("work", "'direct', 0.01", "12", main),
        ("work", "'create_task', 0.01", "13", main),
        ("work", "'ensure_future', 0.01", "14", main),
        ("work", "'by_name', 0.01", "15", main),
        ("work", "'callback', 0.01", "17", None),  # made by a callback: no task was running
        ("work", "'factory', 0.01", "8", main),  # the innermost frame outside asyncio: the factory
    ]
    for create in creates[1:]:  # every one ran: resumed, slept, returned
        steps = [e[0] for e in rec.sequence() if e[1] == create["task"]]
        assert steps == ["create", "resume", "suspend", "ready", "resume", "done"]
    # not a coroutine: asyncio's own error, and no task
    outputs = [e["text"] for e in rec.events if e["ev"] == "output"]
    assert outputs == ["a coroutine was expected, got 42\n"]


def test_an_eager_task_runs_its_first_step_inside_its_creator_as_its_own_step(record):
    factory = "asyncio.eager_task_factory" if sys.version_info >= (3, 12) else "None"
    rec = record(
        f"""
        import asyncio

        async def quick():
            return 1

        async def main():
            asyncio.get_running_loop().set_task_factory({factory})
            await asyncio.create_task(quick())

        asyncio.run(main())
        """
    )
    main, quick = rec.task_id("Task-1"), next(
        e["task"] for e in rec.events if e["ev"] == "create" and e["coro"] == "quick"
    )
    if sys.version_info >= (3, 12):  # eager: quick's whole life inside main's step
        assert rec.sequence() == [
            ("create", main), ("resume", main), ("create", quick), ("resume", quick),
            ("done", quick), ("done", main),
        ]  # fmt: skip
    else:
        assert rec.sequence() == [
            ("create", main), ("resume", main), ("create", quick), ("suspend", main),
            ("resume", quick), ("done", quick), ("ready", main), ("resume", main), ("done", main),
        ]  # fmt: skip


def test_a_loop_built_directly_is_recorded_and_its_block_named(record):
    rec = record(
        """
        import asyncio, time

        async def blocker():
            time.sleep(0.15)

        loop = asyncio.SelectorEventLoop()
        loop.run_until_complete(blocker())
        loop.close()
        """
    )
    assert [e["impl"] for e in rec.events if e["ev"] == "loop"] == ["asyncio"]
    [block] = rec.timeline.blocks
    assert (block.code, block.where.rsplit("/", 1)[-1]) == ("time.sleep(0.15)", "scenario.py:5")


def test_the_watchdog_samples_the_thread_that_runs_the_loop(record):
    rec = record(
        """
        import asyncio, threading, time

        async def job():
            time.sleep(0.3)

        loop = asyncio.new_event_loop()
        stop = threading.Event()
        runner = threading.Thread(target=loop.run_forever, name="loop-thread")
        runner.start()
        asyncio.run_coroutine_threadsafe(job(), loop)
        stop.wait(0.7)
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        """
    )
    [block] = rec.timeline.blocks
    assert (block.code, block.where.rsplit("/", 1)[-1]) == ("time.sleep(0.3)", "scenario.py:5")
    assert [e["thread"] for e in rec.events if e["ev"] == "loop"] == ["loop-thread"]
    handoffs = [(e["thread"], e["func"]) for e in rec.events if e["ev"] == "thread_job"]
    assert ("MainThread", "run_coroutine_threadsafe()") in handoffs


def test_waits_inside_async_generators_name_the_real_primitive(record):
    rec = record(
        """
        import asyncio

        async def ticks(queue, lock):
            await asyncio.sleep(0.05)
            yield 1
            yield await queue.get()
            async with lock:
                yield 3

        async def main():
            queue, lock = asyncio.Queue(), asyncio.Lock()
            await lock.acquire()
            asyncio.get_running_loop().call_later(0.1, queue.put_nowait, 2)
            asyncio.get_running_loop().call_later(0.15, lock.release)
            async for _ in ticks(queue, lock):
                pass

        asyncio.run(main())
        """
    )
    waits = [
        (e["waiting_on"]["kind"], e["waiting_on"]["where"].rsplit(":", 1)[1],
         "deadline" in e["waiting_on"])
        for e in rec.events if e["ev"] == "suspend" and e["task"] == rec.task_id("Task-1")
    ]  # fmt: skip
    assert waits == [("sleep", "5", True), ("queue", "7", False), ("lock", "8", False)]


def test_a_thread_handing_a_result_back_gets_a_lane_linked_to_the_waiting_task(record):
    rec = record(
        """
        import asyncio, threading, time

        def work(loop, future):
            time.sleep(0.05)
            loop.call_soon_threadsafe(future.set_result, 7)

        async def main():
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            threading.Thread(target=work, args=(loop, future), name="helper").start()
            await future

        asyncio.run(main())
        """
    )
    main = rec.task_id("Task-1")
    suspend = next(e for e in rec.events if e["ev"] == "suspend")
    assert rec.sequence("thread", "func", "start") == [
        ("create", main, None, None, None),
        ("resume", main, None, None, None),
        ("suspend", main, None, None, None),
        ("thread_job", main, "helper", "Future.set_result()", suspend["t"]),
        ("ready", main, None, None, None),
        ("resume", main, None, None, None),
        ("done", main, None, None, None),
    ]
    assert list(rec.timeline.threads) == ["helper"]
    assert suspend["waiting_on"]["where"].endswith("scenario.py:12")


def test_a_failure_inside_the_recorder_is_reported_once_and_the_program_goes_on(record):
    rec = record(
        """
        import asyncio

        class OddQueue(asyncio.Queue):
            def qsize(self):
                raise RuntimeError("qsize is broken here")

        async def main():
            queue = OddQueue()
            asyncio.get_running_loop().call_later(0.02, queue.put_nowait, 1)
            print("got", await queue.get())
            asyncio.get_running_loop().call_later(0.02, queue.put_nowait, 2)
            print("got", await queue.get())

        asyncio.run(main())
        """
    )
    outputs = [(e["stream"], e["text"]) for e in rec.events if e["ev"] == "output"]
    assert ("stdout", "got 1\n") in outputs and ("stdout", "got 2\n") in outputs
    notices = [text for _stream, text in outputs if text.startswith("loopviz:")]
    assert notices == [
        "loopviz: could not record what a task waits on (RuntimeError: qsize is broken here); "
        "the program is unaffected, and only that detail is missing from the recording\n"
    ]
    assert rec.session.exit_code == 0


def test_a_sleep_of_infinity_waits_until_cancelled_as_in_plain_python(record):
    rec = record(
        """
        import asyncio

        async def forever():
            try:
                await asyncio.sleep(float("inf"))
            except asyncio.CancelledError:
                print("cancelled")
                raise

        async def main():
            task = asyncio.create_task(forever())
            await asyncio.sleep(0.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        asyncio.run(main())
        """
    )
    forever = next(e for e in rec.events if e["ev"] == "create" and e["coro"] == "forever")
    [wait] = [e["waiting_on"] for e in rec.events if e["ev"] == "suspend" and e["task"] ==
              forever["task"]]  # fmt: skip
    assert wait == {"kind": "sleep", "label": "sleep infs", "where": wait["where"]}
    done = next(e for e in rec.events if e["ev"] == "done" and e["task"] == forever["task"])
    assert done["outcome"] == "cancelled"
    assert [e["text"] for e in rec.events if e["ev"] == "output"] == ["cancelled\n"]


def test_a_run_killed_during_a_long_sleep_ends_when_it_was_killed(record):
    rec = record(
        """
        import asyncio, os, signal

        async def sleeper():
            await asyncio.sleep(3600)

        async def main():
            asyncio.create_task(sleeper())
            await asyncio.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    end = rec.events[-1]
    assert end["ev"] == "end" and end["error"] == "the scenario was killed by SIGKILL"
    assert 0.2e9 <= end["t"] < 3e9
    assert max(e["t"] for e in rec.events) == end["t"]  # nothing made up past the real end
    assert not [e for e in rec.events if e["ev"] == "ready" and e["t"] > 1e9]


def test_the_program_sees_itself_and_prints_exactly_as_in_plain_python(tmp_path):
    script = tmp_path / "selfaware.py"
    script.write_text(
        "import os, sys, threading\n"
        "sys.setswitchinterval(1e-6)  # threads switch often: a race in capture would show\n"
        "print(__file__, sys.argv, sys.path[0], __name__)\n"
        "def spam(n):\n"
        "    for i in range(5000):\n"
        "        print(f'thread {n} line {i}')\n"
        "threads = [threading.Thread(target=spam, args=(n,)) for n in range(8)]\n"
        "for t in threads: t.start()\n"
        "for t in threads: t.join()\n"
    )
    plain = subprocess.run(
        [sys.executable, "selfaware.py", "x"], cwd=tmp_path, capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    session = Session(Target(script.relative_to(tmp_path), ["x"]), tmp_path / "t.jsonl")
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        session.start()
        session.wait()
    finally:
        os.chdir(here)
    recorded = "".join(e.text for e in session.timeline.events if e.ev == "output")
    assert recorded.splitlines()[0] == plain.stdout.splitlines()[0]
    # print() writes the text and the newline apart, so threads interleave in plain Python too:
    # the same lines, each exactly once, and the same number of newlines
    lines = re.findall(r"thread \d+ line \d+", recorded)
    assert sorted(lines) == sorted(re.findall(r"thread \d+ line \d+", plain.stdout))
    assert len(set(lines)) == len(lines) == 40_000
    assert recorded.count("\n") == plain.stdout.count("\n")


def test_uvloop_shutdown_coroutines_are_not_the_programs_tasks(tmp_path):
    script = tmp_path / "on_uvloop.py"
    script.write_text(
        "import asyncio, uvloop\n"
        "async def main():\n"
        "    await asyncio.sleep(0.01)\n"
        "uvloop.run(main())\n"
    )
    rec = record_file(script, tmp_path / "t.jsonl")
    lanes = sorted((lane.coro, lane.internal) for lane in rec.timeline.tasks.values())
    assert lanes == [
        ("Loop.shutdown_asyncgens", True),
        ("Loop.shutdown_default_executor", True),
        ("run.<locals>.wrapper", False),  # uvloop.run's task, running main()
    ]


def test_a_task_made_past_the_recorder_is_counted_and_named_in_the_summary(record):
    rec = record(
        """
        import asyncio, _asyncio

        async def hidden():
            await asyncio.sleep(0.01)

        async def main():
            await _asyncio.Task(hidden())  # asyncio's C class itself: loopviz cannot see in

        asyncio.run(main())
        """
    )
    [unseen] = [(e["count"], e["detail"]) for e in rec.events if e["ev"] == "unseen"]
    assert unseen == (1, "hidden")
    assert "the recorder could not see 1 task(s): hidden" in summarize(rec.timeline)


def test_every_file_named_is_recorded_with_its_digest(record):
    rec = record(
        """
        import asyncio

        asyncio.run(asyncio.sleep(0.01))
        """
    )
    sources = [e for e in rec.events if e["ev"] == "source"]
    script = rec.trace_path.with_name("scenario.py")
    assert [(e["path"], e["sha256"]) for e in sources] == [
        (str(script), hashlib.sha256(script.read_bytes()).hexdigest())
    ]


def test_asyncio_closing_an_unfinished_generator_is_its_own_housekeeping_task(record):
    rec = record(
        """
        import asyncio

        async def ticks():
            while True:
                yield 1
                await asyncio.sleep(0)

        async def main():
            async for _ in ticks():
                break  # left unfinished: asyncio closes it in a task of its own

        asyncio.run(main())
        """
    )
    lanes = sorted((lane.coro, lane.internal) for lane in rec.timeline.tasks.values())
    assert ("ticks (closing)", True) in lanes and ("main", False) in lanes


def test_a_task_asyncio_refuses_to_make_is_not_recorded_and_warns_as_in_plain_python(record):
    source = """
        import asyncio, gc

        async def work():
            pass

        async def main():
            try:
                asyncio.Task(work(), bogus=1)
            except TypeError as error:
                print(error)
            gc.collect()

        asyncio.run(main())
        """
    rec = record(source)
    plain = subprocess.run(
        [sys.executable, str(rec.session.target.script)], capture_output=True, text=True, check=True
    )
    outputs = {e["stream"]: e["text"] for e in rec.events if e["ev"] == "output"}
    assert outputs["stdout"] == plain.stdout  # asyncio's own words (they vary by version)
    assert "'bogus'" in plain.stdout
    # the coroutine is the program's to warn about, at the program's line
    assert outputs["stderr"] == plain.stderr
    assert "coroutine 'work' was never awaited\n  asyncio.Task(work(), bogus=1)" in plain.stderr
    assert [e["coro"] for e in rec.events if e["ev"] == "create" and not e["internal"]] == ["main"]


def test_a_tasks_arguments_are_shown_short_and_only_where_showing_runs_no_program_code(record):
    rec = record(
        """
        import asyncio

        class Client:
            async def fetch(self, path):
                await asyncio.sleep(0)

        class Loud:
            def __repr__(self):
                raise RuntimeError("never asked")

        async def work(url, retries, data, flag, nothing):
            await asyncio.sleep(0)

        async def closes_over(n):
            await asyncio.sleep(0)
            return (lambda: n)()  # n lives in a cell from the start

        async def main():
            await asyncio.create_task(work("https://example.com/a/long/path", 3, [1], True, None))
            await asyncio.create_task(work(b"raw", 2.5, Loud(), False, "s"))
            await asyncio.create_task(Client().fetch("/x"))
            await asyncio.create_task(closes_over(7))
            coro = closes_over(8)
            try:
                asyncio.Task.__init__(object(), coro)  # not a task: asyncio's TypeError
            except TypeError:
                print("TypeError")
            coro.close()

        asyncio.run(main())
        """
    )
    creates = [e for e in rec.events if e["ev"] == "create" and not e["internal"]]
    assert [(e["coro"], e["args"]) for e in creates[1:]] == [
        ("work", "'https://example.com/..., 3, ..., True, None"),  # 24 characters at most each
        ("work", "b'raw', 2.5, ..., False, 's'"),
        ("Client.fetch", "'/x'"),  # not self
        ("closes_over", "7"),
    ]
    assert [e["text"] for e in rec.events if e["ev"] == "output"] == ["TypeError\n"]
    assert rec.session.exit_code == 0
