"""Async iterators and async generators: `async for` awaits between items.

A sensor is an async generator that awaits a reading before each `yield`. A class with
`__aiter__`/`__anext__` pages through results, awaiting each page. Meanwhile a clock task ticks:
every await inside `async for` hands the loop to it.

Watch for: the reader's lane alternating between short steps and waits on each item; the clock
lane ticking in the gaps.
"""

import asyncio


async def sensor(readings: int):
    for n in range(readings):
        await asyncio.sleep(0.15)
        yield 20 + n * 0.5


class Pages:
    def __init__(self, count: int) -> None:
        self.count, self.page = count, 0

    def __aiter__(self) -> "Pages":
        return self

    async def __anext__(self) -> list[int]:
        if self.page == self.count:
            raise StopAsyncIteration
        await asyncio.sleep(0.2)
        self.page += 1
        return list(range(self.page * 3 - 3, self.page * 3))


async def clock() -> None:
    for _ in range(10):
        await asyncio.sleep(0.2)


async def read_all() -> None:
    async for value in sensor(6):
        print(f"reader: {value:.1f} °C")
    async for page in Pages(4):
        print(f"reader: page {page}")
    print("reader: " + str([value async for value in sensor(3)]))


async def main() -> None:
    await asyncio.gather(
        asyncio.create_task(clock(), name="clock"),
        asyncio.create_task(read_all(), name="reader"),
    )


if __name__ == "__main__":
    asyncio.run(main())
