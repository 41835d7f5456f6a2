"""A loop created (and first run) in the main thread, then run_forever in another thread.

A coroutine submitted with run_coroutine_threadsafe blocks that loop with time.sleep(0.3) while
the main thread waits in stop.wait(0.7): the culprit is the time.sleep line, never the main
thread's wait.
"""

import asyncio
import threading
import time

loop = asyncio.new_event_loop()
stop = threading.Event()


def run_loop() -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


async def job() -> str:
    await asyncio.sleep(0.05)
    time.sleep(0.3)
    return "job done"


async def warm_up() -> None:
    await asyncio.sleep(0.01)
    print("warmed up in", threading.current_thread().name)


loop.run_until_complete(warm_up())
runner = threading.Thread(target=run_loop, name="loop-thread")
runner.start()
future = asyncio.run_coroutine_threadsafe(job(), loop)
stop.wait(0.7)
print(future.result(timeout=5))
loop.call_soon_threadsafe(loop.stop)
runner.join()
loop.close()
print("stopped")
