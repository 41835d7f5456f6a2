"""What each suspended task waits on, and how each kind of block and task is recorded."""

from __future__ import annotations

import sys

import pytest


def first_wait(rec, name: str) -> dict:
    task = rec.task_id(name)
    return next(e["waiting_on"] for e in rec.events if e["ev"] == "suspend" and e["task"] == task)


def test_each_primitive_is_named_and_waits_on_one_object_share_an_id(record):
    rec = record(
        """
        import asyncio

        async def main():
            lock, sem, event = asyncio.Lock(), asyncio.Semaphore(1), asyncio.Event()
            cond, barrier = asyncio.Condition(), asyncio.Barrier(2)
            full, empty = asyncio.Queue(maxsize=1), asyncio.Queue()
            await lock.acquire()
            await sem.acquire()
            await full.put("x")

            async def with_lock():
                async with lock:
                    pass

            async def with_sem():
                async with sem:
                    pass

            async def on_cond():
                async with cond:
                    await cond.wait()

            spawn = asyncio.create_task
            tasks = [
                spawn(with_lock(), name="lock"),
                spawn(with_sem(), name="sem-1"),
                spawn(with_sem(), name="sem-2"),
                spawn(event.wait(), name="event"),
                spawn(on_cond(), name="cond"),
                spawn(barrier.wait(), name="barrier"),
                spawn(full.put("y"), name="put"),
                spawn(empty.get(), name="get"),
            ]
            await asyncio.sleep(0.01)
            lock.release()
            sem.release()
            event.set()
            async with cond:
                cond.notify_all()
            await barrier.wait()
            await full.get()
            empty.put_nowait("z")
            await asyncio.gather(*tasks)

        asyncio.run(main())
        """
    )
    waits = {
        name: (w["kind"], w["label"])
        for name in ("lock", "sem-1", "event", "cond", "barrier", "put", "get")
        for w in [first_wait(rec, name)]
    }
    assert waits == {
        "lock": ("lock", "Lock"),
        "sem-1": ("semaphore", "Semaphore (0 free)"),
        "event": ("event", "Event"),
        "cond": ("condition", "Condition"),
        "barrier": ("barrier", "Barrier (1/2 waiting)"),
        "put": ("queue", "queue.put (full 1/1)"),
        "get": ("queue", "queue.get (size 0)"),
    }
    assert first_wait(rec, "sem-1")["obj"] == first_wait(rec, "sem-2")["obj"]
    assert first_wait(rec, "sem-1")["obj"] != first_wait(rec, "lock")["obj"]
    outcomes = {e["task"]: e["outcome"] for e in rec.events if e["ev"] == "done"}
    assert set(outcomes.values()) == {"returned"}


def test_stream_io_names_direction_and_peer(record):
    rec = record(
        """
        import asyncio

        async def handle(reader, writer):
            data = await reader.readline()
            writer.write(data)
            await writer.drain()
            writer.close()

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await asyncio.sleep(0.05)
            writer.write(b"ping\\n")
            assert await reader.readline() == b"ping\\n"
            writer.close()
            server.close()

        asyncio.run(main())
        """
    )
    main = rec.task_id("Task-1")
    handler = next(
        lane for lane in rec.timeline.tasks.values() if lane.coro == "handle"
    )  # the server made this task: it is recorded like any other
    handler_wait = first_wait(rec, handler.name)
    assert handler_wait["kind"] == "io" and handler_wait["label"].startswith("read 127.0.0.1:")
    main_waits = [e["waiting_on"] for e in rec.events if e["ev"] == "suspend" and e["task"] == main]
    assert any(w["kind"] == "io" and w["label"].startswith("read 127.0.0.1:") for w in main_waits)


def test_each_stream_read_is_named_by_its_own_peer_at_every_wait(record):
    """A stream's name is kept for it once found (the native core reads it back): each of three
    connections made one after another, their readers often at one address, waits under its
    own peer at both of its reads, and no stream's name outlives it."""
    rec = record(
        """
        import asyncio

        async def handle(reader, writer):
            port = writer.get_extra_info("peername")[1]
            asyncio.current_task().set_name(f"handler-{port}")
            await reader.readline()
            await reader.readline()
            writer.close()

        async def main():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            for n in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                for line in (b"one\\n", b"two\\n"):
                    await asyncio.sleep(0.01)
                    writer.write(line)
                await reader.read()  # until the handler closes
                writer.close()
                del reader, writer
            server.close()

        asyncio.run(main())
        """
    )
    handlers = [lane for lane in rec.timeline.tasks.values() if lane.coro == "handle"]
    assert len(handlers) == 3
    objects = set()
    for lane in handlers:
        port = lane.name.removeprefix("handler-")
        waits = [
            (e["waiting_on"]["kind"], e["waiting_on"]["label"], e["waiting_on"]["obj"])
            for e in rec.events
            if e["ev"] == "suspend" and e["task"] == lane.id
        ]
        assert len(waits) == 2 and waits[0] == waits[1]
        assert waits[0][:2] == ("io", f"read 127.0.0.1:{port}")
        objects.add(waits[0][2])
    assert len(objects) == 3  # three readers, three ids


def test_blocking_callback_is_a_block_without_a_task(record):
    rec = record(
        """
        import asyncio, time

        def slow_callback():
            time.sleep(0.3)

        async def main():
            asyncio.get_running_loop().call_later(0.05, slow_callback)
            await asyncio.sleep(0.5)

        asyncio.run(main())
        """
    )
    blocks = [e for e in rec.events if e["ev"] == "block"]
    assert [(b["task"], b["where"].rsplit("/", 1)[-1], b["code"]) for b in blocks] == [
        (None, "scenario.py:5", "time.sleep(0.3)")
    ]
    assert 0.29e9 < blocks[0]["end"] - blocks[0]["start"] < 0.5e9


def test_cpu_loop_is_attributed_to_the_line_doing_the_work(record):
    rec = record(
        """
        import asyncio, time

        def crunch():
            deadline = time.perf_counter() + 0.6  # time for a sample even on a loaded machine
            n = 0
            while time.perf_counter() < deadline:
                n += 1
            return n

        async def main():
            await asyncio.sleep(0)
            crunch()

        asyncio.run(main())
        """
    )
    block = next(e for e in rec.events if e["ev"] == "block")
    assert block["where"].rsplit(":", 1)[-1] in {"7", "8"}
    # the step's own frames only: not the asyncio.run line below it
    assert [line.split(" in ")[1].split(":")[0] for line in block["stack"]] == ["crunch", "main"]


def test_task_group_names_are_final_and_a_scenario_factory_still_runs(record):
    rec = record(
        """
        import asyncio

        seen = []

        def my_factory(loop, coro, **kwargs):
            seen.append(coro.__qualname__)
            return asyncio.Task(coro, loop=loop, **kwargs)

        async def job():
            await asyncio.sleep(0)

        async def main():
            asyncio.get_running_loop().set_task_factory(my_factory)
            async with asyncio.TaskGroup() as group:
                group.create_task(job(), name="named-in-group")
                asyncio.create_task(job(), name="named-later")
                group.create_task(job())
            print(seen, asyncio.get_running_loop().get_task_factory() is my_factory)

        asyncio.run(main())
        """
    )
    names = [e["name"] for e in rec.events if e["ev"] == "create"][1:4]
    assert names[:2] == ["named-in-group", "named-later"]
    # what the program's task is really called: 3.13.0 names it "None" under any task factory,
    # the program's own included (gh-124269), and the recording says so
    plain_name = "None" if sys.version_info[:3] == (3, 13, 0) else "Task-"
    assert names[2].startswith(plain_name)
    output = "".join(e["text"] for e in rec.events if e["ev"] == "output")
    assert output == "['job', 'job', 'job'] True\n"


def test_eager_tasks_are_recorded_in_order_and_on_3_11_every_task_waits_for_the_loop(record):
    """3.12+ runs an eager task's first step inside the step that made it; 3.11 has no eager
    tasks, so the same program's task first runs once its parent waits for it."""
    rec = record(
        """
        import asyncio

        async def quick():
            return "at once"

        async def main():
            eager = getattr(asyncio, "eager_task_factory", None)  # 3.12+
            if eager is not None:
                asyncio.get_running_loop().set_task_factory(eager)
            task = asyncio.create_task(quick(), name="eager")
            print(task.done())
            print(await task)

        asyncio.run(main())
        """
    )
    main, eager = rec.task_id("Task-1"), rec.task_id("eager")
    output = "".join(e["text"] for e in rec.events if e["ev"] == "output")
    if sys.version_info >= (3, 12):
        assert rec.sequence("outcome") == [
            ("create", main, None),
            ("resume", main, None),
            ("create", eager, None),
            ("resume", eager, None),
            ("done", eager, "returned"),
            ("done", main, "returned"),
        ]
        assert output == "True\nat once\n"
    else:
        assert rec.sequence("outcome", "waiting_on.label") == [
            ("create", main, None, None),
            ("resume", main, None, None),
            ("create", eager, None, None),
            ("suspend", main, None, "task eager"),
            ("resume", eager, None, None),
            ("done", eager, "returned", None),
            ("ready", main, None, None),
            ("resume", main, None, None),
            ("done", main, "returned", None),
        ]
        assert output == "False\nat once\n"


def test_uvloop_is_recorded_and_says_what_it_cannot_see(record):
    pytest.importorskip("uvloop", reason="uvloop is installed with the test extras on Linux")
    rec = record(
        """
        import asyncio, time
        import uvloop

        async def block():
            await asyncio.sleep(0.05)
            time.sleep(0.3)

        async def main():
            await asyncio.create_task(block(), name="block")
            await asyncio.to_thread(time.sleep, 0.01)

        uvloop.run(main())
        """
    )
    assert rec.trace.header["loop"] == "uvloop"
    loop = next(e for e in rec.events if e["ev"] == "loop")
    assert loop["unrecorded"] == "idle time and blocking callbacks"
    block = next(e for e in rec.events if e["ev"] == "block")
    assert (block["task"], block["code"]) == (rec.task_id("block"), "time.sleep(0.3)")
    assert [e["func"] for e in rec.events if e["ev"] == "thread_start"] == ["time.sleep()"]


def test_ready_events_show_the_tasks_starved_by_a_block(record):
    rec = record(
        """
        import asyncio, time

        async def sleeper():
            await asyncio.sleep(0.1)

        async def main():
            task = asyncio.create_task(sleeper(), name="sleeper")
            await asyncio.sleep(0)
            time.sleep(0.4)
            await task

        asyncio.run(main())
        """
    )
    sleeper = rec.task_id("sleeper")
    block = next(e for e in rec.events if e["ev"] == "block")
    ready = [e for e in rec.events if e["ev"] == "ready" and e["task"] == sleeper]
    resume = [e for e in rec.events if e["ev"] == "resume" and e["task"] == sleeper][-1]
    assert [e["cause"] for e in ready] == ["sleep ended"]
    assert block["start"] < ready[0]["t"] < block["end"] <= resume["t"]
    starved = rec.timeline.starved(rec.timeline.blocks[0], rec.timeline.end_t)
    assert [lane.name for lane in starved] == ["sleeper"]


def test_timeout_deadline_is_on_the_wait_it_will_cut_short(record):
    rec = record(
        """
        import asyncio

        async def main():
            try:
                async with asyncio.timeout(0.05):
                    await asyncio.Event().wait()
            except TimeoutError:
                print("timed out")

        asyncio.run(main())
        """
    )
    suspend = next(e for e in rec.events if e["ev"] == "suspend")
    wait = suspend["waiting_on"]
    assert wait["kind"] == "event"
    assert abs(wait["timeout"] - (suspend["t"] + 50_000_000)) < 5_000_000
    assert [e["text"] for e in rec.events if e["ev"] == "output"] == ["timed out\n"]


def test_exception_never_retrieved_is_marked(record):
    rec = record(
        """
        import asyncio, gc

        async def fails():
            raise KeyError("lost")

        async def main():
            asyncio.create_task(fails(), name="orphan")
            await asyncio.sleep(0.01)
            gc.collect()

        asyncio.run(main())
        """
    )
    orphan = rec.task_id("orphan")
    marks = [e for e in rec.events if e["ev"] == "unretrieved"]
    assert [(e["task"], e["detail"]) for e in marks] == [(orphan, "KeyError: 'lost'")]
    assert rec.timeline.tasks[orphan].unretrieved


def test_blocking_socket_call_is_attributed_to_its_line(record):
    rec = record(
        """
        import asyncio, socket

        async def main():
            server = socket.create_server(("127.0.0.1", 0))
            client = socket.create_connection(server.getsockname())
            client.settimeout(0.3)
            try:
                client.recv(1)
            except TimeoutError:
                pass

        asyncio.run(main())
        """
    )
    block = next(e for e in rec.events if e["ev"] == "block")
    assert (block["where"].rsplit(":", 1)[-1], block["code"]) == ("9", "client.recv(1)")


def test_three_locks_made_one_after_another_get_three_ids(record):
    """Each Lock is made after the last one died, at the same address as a rule: ids held by
    weak reference, never by ``id()``, keep them apart."""
    rec = record(
        """
        import asyncio

        async def take(lock):
            async with lock:
                pass

        async def main():
            for n in range(3):
                lock = asyncio.Lock()
                await lock.acquire()
                waiter = asyncio.create_task(take(lock), name=f"waiter-{n}")
                await asyncio.sleep(0)
                lock.release()
                await waiter
                del lock, waiter

        asyncio.run(main())
        """
    )
    main = rec.task_id("Task-1")
    expected = [("create", main, None, None), ("resume", main, None, None)]
    for n in range(3):
        waiter = rec.task_id(f"waiter-{n}")
        expected += [
            ("create", waiter, None, None),
            ("suspend", main, "sleep", None),
            ("ready", main, None, None),
            ("resume", waiter, None, None),
            ("suspend", waiter, "lock", n + 1),  # its own lock's id: 1, 2, 3
            ("resume", main, None, None),
            ("ready", waiter, None, None),
            ("suspend", main, "task", None),
            ("resume", waiter, None, None),
            ("done", waiter, None, None),
            ("ready", main, None, None),
            ("resume", main, None, None),
        ]
    expected.append(("done", main, None, None))
    assert rec.sequence("waiting_on.kind", "waiting_on.obj") == expected
