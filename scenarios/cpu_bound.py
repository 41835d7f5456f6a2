"""CPU-bound Python code in a coroutine blocks the loop just like `time.sleep`.

A ticker wants to run every 0.1 s. Then `crunch` adds up numbers in a plain Python loop for
about a second, without ever awaiting: no other task can run until it finishes.

Watch for: the red band while `crunch` computes, with the culprit line inside its loop; the
ticker starved for the whole band, then resuming late.
"""

import asyncio
import time


async def ticker() -> None:
    for tick in range(20):
        await asyncio.sleep(0.1)
        print(f"ticker: tick {tick + 1}")


async def crunch() -> None:
    await asyncio.sleep(0.5)
    print("crunch: adding up numbers in pure Python...")
    started = time.perf_counter()
    total = 0
    while time.perf_counter() - started < 1.0:
        for i in range(10_000):
            total += i * i
    print(f"crunch: done ({total} after {time.perf_counter() - started:.1f} s)")


async def main() -> None:
    await asyncio.gather(
        asyncio.create_task(ticker(), name="ticker"),
        asyncio.create_task(crunch(), name="crunch"),
    )


if __name__ == "__main__":
    asyncio.run(main())
