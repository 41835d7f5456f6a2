"""Producer and consumers with an `asyncio.Queue`: `join`, `task_done`, and cancelling idle workers.

A producer puts ten jobs on a queue of size 3; three workers take them, each calling `task_done`.
`main` waits on `queue.join()` until every job is done, then cancels the workers, which are by
then idle, waiting on an empty queue.

Watch for: the producer waiting on "queue.put (full 3/3)" when the workers fall behind; workers
waiting on "queue.get"; `main` on "queue.join"; at the end the workers end cancelled (⊘).
"""

import asyncio


async def producer(queue: asyncio.Queue) -> None:
    for job in range(1, 11):
        await queue.put(job)
        print(f"producer: queued job {job} (queue size {queue.qsize()})")
        await asyncio.sleep(0.05)


async def worker(name: str, queue: asyncio.Queue) -> None:
    while True:
        job = await queue.get()
        await asyncio.sleep(0.3)
        print(f"{name}: finished job {job}")
        queue.task_done()


async def main() -> None:
    queue: asyncio.Queue = asyncio.Queue(maxsize=3)
    workers = [
        asyncio.create_task(worker(f"worker-{n}", queue), name=f"worker-{n}") for n in range(3)
    ]
    await asyncio.create_task(producer(queue), name="producer")
    await queue.join()
    print("main: every job is done; cancelling the idle workers")
    for task in workers:
        task.cancel()
    await asyncio.gather(*workers, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
