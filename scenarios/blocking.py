"""A blocking call freezes every task.

Three tickers take turns on the loop, each awaiting `asyncio.sleep`, so their lanes keep moving.
At 1.5 s the `reporter` task calls `time.sleep(2)`: a blocking call that never yields to the loop.

Watch for: every lane stops at once. A red band grows across all lanes for two seconds while the
clock runs on, and the screen names the line that froze the loop. The tickers whose sleeps ended
during the band are *starved*: ready to run, but the loop cannot get to them. When the band ends
they all run at once, late.
"""

import asyncio
import time


async def ticker(name: str, period: float, ticks: int) -> None:
    for tick in range(1, ticks + 1):
        await asyncio.sleep(period)
        print(f"{name}: tick {tick}")


async def reporter() -> None:
    await asyncio.sleep(1.5)
    print("reporter: writing the report the slow way...")
    time.sleep(2)  # blocks the whole event loop: nothing else can run
    print("reporter: done, the loop is free again")


async def main() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(ticker("fast", 0.25, 20), name="fast")
        group.create_task(ticker("medium", 0.5, 10), name="medium")
        group.create_task(ticker("slow", 1.0, 5), name="slow")
        group.create_task(reporter(), name="reporter")
    print("main: all tasks finished")


if __name__ == "__main__":
    asyncio.run(main())
