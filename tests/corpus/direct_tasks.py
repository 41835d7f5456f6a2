"""Tasks made every way asyncio allows: asyncio.Task(coro) directly (eager on 3.12+),
loop.create_task, asyncio.ensure_future, and a custom task factory."""

import asyncio
import sys


async def work(label: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return label


async def eager_work(label: str) -> str:
    await asyncio.sleep(0.01)
    return label


def my_factory(loop, coro, **kwargs):
    return asyncio.Task(coro, loop=loop, **kwargs)


async def main() -> None:
    loop = asyncio.get_running_loop()
    direct = asyncio.Task(work("direct", 0.01))
    made = [direct, loop.create_task(work("loop.create_task", 0.02))]
    made.append(asyncio.ensure_future(work("ensure_future", 0.03)))
    if sys.version_info >= (3, 12):
        made.append(asyncio.Task(eager_work("eager"), loop=loop, eager_start=True))
    else:
        made.append(asyncio.Task(eager_work("eager"), loop=loop))
    print(await asyncio.gather(*made))
    loop.set_task_factory(my_factory)
    print(await asyncio.create_task(work("factory", 0.01)))
    loop.set_task_factory(None)


asyncio.run(main())
