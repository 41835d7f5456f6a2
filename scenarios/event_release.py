"""An `asyncio.Event` releases every waiter at once.

Six runners line up and wait on the same `Event`. After a second the starter calls `set()`, and
every waiter becomes ready in the same instant.

Watch for: six lanes waiting on "Event", sharing one object; all of them turning ready at the
same moment, then running one after another as the loop gets to each.
"""

import asyncio


async def runner(n: int, start: asyncio.Event) -> None:
    print(f"runner {n}: on the line")
    await start.wait()
    print(f"runner {n}: off!")
    await asyncio.sleep(0.2 + n * 0.05)


async def main() -> None:
    start = asyncio.Event()
    runners = [asyncio.create_task(runner(n, start), name=f"runner-{n}") for n in range(1, 7)]
    await asyncio.sleep(1.0)
    print("starter: go!")
    start.set()
    await asyncio.gather(*runners)


if __name__ == "__main__":
    asyncio.run(main())
