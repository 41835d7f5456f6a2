"""await asyncio.sleep(float("inf")) waits until cancelled, as in plain Python."""

import asyncio


async def forever() -> None:
    try:
        await asyncio.sleep(float("inf"))
    except asyncio.CancelledError:
        print("forever: cancelled")
        raise


async def main() -> None:
    task = asyncio.create_task(forever(), name="forever")
    await asyncio.sleep(0.2)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        print("main: the task was cancelled, as asked")


asyncio.run(main())
