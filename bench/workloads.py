"""Benchmark workloads: each times its own work with perf_counter and prints the seconds.

Run as ``python bench/workloads.py NAME``; ``bench/recorder_overhead.py`` runs each one plain, under
``loopviz record`` and under viztracer, alternating, and reports the ratios. With
``LOOPVIZ_BENCH_LOOP=uvloop`` in the environment the workload runs on uvloop; with
``LOOPVIZ_BENCH_IN_PROCESS=1`` it records itself (see ``record_in_process``).
"""

import asyncio
import os
import sys
import time


async def sleep0_steps() -> None:
    async def worker():
        for _ in range(10):
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(10_000)))


async def gather_sleeps() -> None:
    await asyncio.gather(*(asyncio.sleep(0.001) for _ in range(1_000)))


async def short_tasks() -> None:
    async def nothing():
        return None

    for _ in range(20):
        await asyncio.gather(*(asyncio.create_task(nothing()) for _ in range(1_000)))


async def lock_and_queue() -> None:
    lock, queue = asyncio.Lock(), asyncio.Queue()

    async def worker(i):
        for _ in range(10):
            async with lock:
                await asyncio.sleep(0)
            await queue.put(i)
            await queue.get()

    await asyncio.gather(*(worker(i) for i in range(500)))


async def echo() -> None:
    async def handle(reader, writer):
        while data := await reader.readline():
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def client():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(50):
            writer.write(b"ping\n")
            await writer.drain()
            await reader.readline()
        writer.close()

    await asyncio.gather(*(client() for _ in range(100)))
    server.close()


WORKLOADS = {
    "sleep0": sleep0_steps,
    "gather": gather_sleeps,
    "short-tasks": short_tasks,
    "lock-queue": lock_and_queue,
    "echo": echo,
}


async def timed(name: str) -> float:
    started = time.perf_counter()
    await WORKLOADS[name]()
    return time.perf_counter() - started


def run(coro):
    if os.environ.get("LOOPVIZ_BENCH_LOOP") == "uvloop":
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def record_in_process() -> None:
    """With ``LOOPVIZ_BENCH_IN_PROCESS=1``: record this process with loopviz's recorder, events
    sent to /dev/null, no parent (the recorder's own cost, apart from the parent's work on a
    shared CPU). ``LOOPVIZ_RECORDER=python`` chooses the pure-Python recorder, as always."""
    from loopviz.recorder.loops import LoopInstaller
    from loopviz.recorder.writer import Recorder

    recorder = Recorder(os.open(os.devnull, os.O_WRONLY), 100_000_000)
    recorder.start()
    LoopInstaller(recorder).patch_asyncio()


if __name__ == "__main__":
    if os.environ.get("LOOPVIZ_BENCH_IN_PROCESS") == "1":
        record_in_process()
    print(f"{run(timed(sys.argv[1])):.6f}")
