"""Rate limiting with a `Semaphore`: at most N tasks inside at once, the rest queue.

Eight downloads share a `Semaphore(3)`. Three go in at once; the others wait on the semaphore
and each goes in as soon as one comes out.

Watch for: never more than three lanes downloading (sleeping) at the same time; the other lanes
wait on "Semaphore (0 free)" and move into the download in turn.
"""

import asyncio

LIMIT = 3


async def download(n: int, gate: asyncio.Semaphore) -> None:
    async with gate:
        print(f"download {n}: in ({LIMIT - gate._value} of {LIMIT} slots taken)")
        await asyncio.sleep(0.5 + (n % 3) * 0.2)
        print(f"download {n}: done")


async def main() -> None:
    gate = asyncio.Semaphore(LIMIT)
    async with asyncio.TaskGroup() as group:
        for n in range(1, 9):
            group.create_task(download(n, gate), name=f"download-{n}")


if __name__ == "__main__":
    asyncio.run(main())
