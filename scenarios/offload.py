"""The fix for a blocking call: `asyncio.to_thread`.

The same story as `blocking.py`: three tickers and a reporter that needs two seconds of blocking
work. This time the reporter hands `time.sleep(2)` to a worker thread with `asyncio.to_thread` and
awaits it, so the event loop stays free.

Watch for: no red band. The tickers keep ticking on time through the whole two seconds, a thread
lane appears while the work runs, and the reporter's lane waits on that thread.
"""

import asyncio
import time


async def ticker(name: str, period: float, ticks: int) -> None:
    for tick in range(1, ticks + 1):
        await asyncio.sleep(period)
        print(f"{name}: tick {tick}")


def write_report() -> str:
    time.sleep(2)  # still blocking, but in a worker thread: the loop does not care
    return "report"


async def reporter() -> None:
    await asyncio.sleep(1.5)
    print("reporter: handing the slow work to a thread...")
    result = await asyncio.to_thread(write_report)
    print(f"reporter: {result} done, and nobody had to wait")


async def main() -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(ticker("fast", 0.25, 20), name="fast")
        group.create_task(ticker("medium", 0.5, 10), name="medium")
        group.create_task(ticker("slow", 1.0, 5), name="slow")
        group.create_task(reporter(), name="reporter")
    print("main: all tasks finished")


if __name__ == "__main__":
    asyncio.run(main())
