"""Timeouts and cancellation: `wait_for`, `asyncio.timeout`, `cancel()` and `CancelledError`.

A slow fetch is cut short by `wait_for`; another by an `asyncio.timeout` block; a third task is
cancelled by hand and cleans up in its `except CancelledError` before re-raising.

Watch for: waits that end early, at their timeout rather than their sleep; the cancelled lanes
ending with ⊘; the cleanup step that runs after `cancel()`.
"""

import asyncio


async def fetch(name: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    return name


async def careful_job() -> None:
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        print("careful job: cancelled, cleaning up")
        await asyncio.sleep(0.1)
        print("careful job: clean")
        raise


async def main() -> None:
    try:
        await asyncio.wait_for(fetch("slow-a", 2.0), timeout=0.5)
    except TimeoutError:
        print("wait_for: slow-a took longer than 0.5 s, cancelled")
    try:
        async with asyncio.timeout(0.5):
            await fetch("slow-b", 2.0)
    except TimeoutError:
        print("asyncio.timeout: slow-b took longer than 0.5 s, cancelled")
    job = asyncio.create_task(careful_job(), name="careful-job")
    await asyncio.sleep(0.3)
    job.cancel()
    try:
        await job
    except asyncio.CancelledError:
        print(f"main: careful job cancelled: {job.cancelled()}")


if __name__ == "__main__":
    asyncio.run(main())
