"""`run_in_executor`: blocking work in a thread pool, CPU-bound work in a process pool.

First, four blocking downloads (`time.sleep`) go to a thread pool: they overlap, and the loop
stays free. Then four CPU-bound counts go to a thread pool, where the GIL lets one run at a time,
and to a process pool, where they run in parallel outside the GIL.

Watch for: worker lanes appear for each job. The CPU work in threads takes about as long as
doing it one after another; in processes it takes a fraction of that (with two or more cores).
The heartbeat lane keeps ticking throughout: none of this blocks the loop.
"""

import asyncio
import concurrent.futures
import time


def download(n: int) -> int:
    time.sleep(0.5)
    return n


def count(n: int) -> int:
    total = 0
    for i in range(8_000_000):
        total += i % 7
    return n


async def heartbeat(stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.1)


async def timed(label: str, executor, func) -> None:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    await asyncio.gather(*(loop.run_in_executor(executor, func, n) for n in range(4)))
    print(f"{label}: {time.perf_counter() - started:.2f} s")


async def main() -> None:
    stop = asyncio.Event()
    beat = asyncio.create_task(heartbeat(stop), name="heartbeat")
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as threads:
        await timed("4 blocking downloads in threads", threads, download)
        await timed("4 CPU counts in threads (the GIL serialises them)", threads, count)
    with concurrent.futures.ProcessPoolExecutor(max_workers=4) as processes:
        await timed("4 CPU counts in processes (in parallel)", processes, count)
    stop.set()
    await beat


if __name__ == "__main__":
    asyncio.run(main())
