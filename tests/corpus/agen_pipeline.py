"""An async-generator pipeline consumed with `async for`; the generators wait on a sleep, a queue
and a lock. While one stage sleeps inside its generator, another task blocks the loop with
time.sleep(0.3): the sleeper's deadline passes during the block, so it is starved, not waiting.
"""

import asyncio
import time

lock = asyncio.Lock()
queue: asyncio.Queue[int] = asyncio.Queue()


async def ticks(count: int):
    for i in range(count):
        await asyncio.sleep(0.05)
        yield i


async def from_queue(count: int):
    for _ in range(count):
        item = await queue.get()
        yield item


async def locked(source):
    async for item in source:
        async with lock:
            yield item * 10


async def feeder() -> None:
    for i in range(3):
        await asyncio.sleep(0.02)
        await queue.put(i)


async def holder() -> None:
    async with lock:
        await asyncio.sleep(0.08)


async def sleeper_stage() -> list[int]:
    seen = []
    async for tick in ticks(3):
        seen.append(tick)
    return seen


async def queue_stage() -> list[int]:
    seen = []
    async for item in locked(from_queue(3)):
        seen.append(item)
    return seen


async def hog() -> None:
    await asyncio.sleep(0.06)
    time.sleep(0.3)


async def main() -> None:
    holding = asyncio.create_task(holder(), name="holder")
    await asyncio.sleep(0)
    results = await asyncio.gather(
        asyncio.create_task(sleeper_stage(), name="sleeper"),
        asyncio.create_task(queue_stage(), name="consumer"),
        asyncio.create_task(feeder(), name="feeder"),
        asyncio.create_task(hog(), name="hog"),
    )
    await holding
    print("sleeper", results[0])
    print("consumer", results[1])


asyncio.run(main())
