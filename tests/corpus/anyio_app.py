"""anyio as its users write it: a task group, a memory object stream, and to_thread.run_sync."""

import time

import anyio


def crunch(n: int) -> int:
    time.sleep(0.05)
    return n * n


async def producer(send_stream) -> None:
    async with send_stream:
        for i in range(5):
            await send_stream.send(i)
            await anyio.sleep(0.01)


async def consumer(receive_stream, results: list) -> None:
    async with receive_stream:
        async for value in receive_stream:
            results.append(await anyio.to_thread.run_sync(crunch, value))


async def main() -> None:
    results: list[int] = []
    send_stream, receive_stream = anyio.create_memory_object_stream(max_buffer_size=0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(producer, send_stream)
        tg.start_soon(consumer, receive_stream, results)
    print("results", results)


anyio.run(main)
