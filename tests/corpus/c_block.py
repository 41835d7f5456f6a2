"""A block inside C code that holds the GIL: sorted() of a huge list, in a coroutine."""

import asyncio
import random

random.seed(13)
DATA = [random.random() for _ in range(1_500_000)]


async def ticker() -> None:
    for _ in range(10):
        await asyncio.sleep(0.02)


async def crunch() -> float:
    await asyncio.sleep(0.05)
    return sorted(DATA)[len(DATA) // 2]


async def main() -> None:
    _, median = await asyncio.gather(ticker(), crunch())
    print("median", round(median, 3))


asyncio.run(main())
