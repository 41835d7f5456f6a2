"""The same workload on the default event loop and on uvloop, when uvloop is installed.

Two thousand tasks pass messages through queues and sleep(0) a hundred times each. The workload
runs once on asyncio's own loop and once on uvloop (a loop written in Cython on libuv). If uvloop
is not installed, the scenario says so and runs on the default loop only.

Watch for: two runs of the same shape, the second usually shorter; the header shows which loop
each run used, and loopviz notes what it cannot see on uvloop (idle time in select).
"""

import asyncio
import time

try:
    import uvloop
except ImportError:
    uvloop = None


async def relay(inbox: asyncio.Queue, outbox: asyncio.Queue) -> None:
    for _ in range(100):
        message = await inbox.get()
        await asyncio.sleep(0)
        outbox.put_nowait(message + 1)


async def workload() -> float:
    started = time.perf_counter()
    queues = [asyncio.Queue() for _ in range(2_001)]
    relays = [asyncio.create_task(relay(queues[i], queues[i + 1])) for i in range(2_000)]
    for _ in range(100):
        queues[0].put_nowait(0)
    await asyncio.gather(*relays)
    return time.perf_counter() - started


def main() -> None:
    default = asyncio.run(workload())
    print(f"default asyncio loop: {default:.2f} s")
    if uvloop is None:
        print("uvloop is not installed (pip install uvloop): ran on the default loop only")
        return
    fast = uvloop.run(workload())
    print(f"uvloop: {fast:.2f} s ({default / fast:.1f}x the default loop's speed)")


if __name__ == "__main__":
    main()
