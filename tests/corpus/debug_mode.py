"""asyncio debug mode: a task's repr says where the task was created (in this file)."""

import asyncio


async def child() -> None:
    await asyncio.sleep(0.01)


async def main() -> None:
    task = asyncio.create_task(child(), name="child")
    print(repr(task))
    await task


asyncio.run(main(), debug=True)
