"""10,000 concurrent tasks: coroutines are cheap; threads are not.

Ten thousand tasks each wait half a second, all at the same time: the whole crowd finishes in
about half a second, on one thread. Then one thousand threads do the same wait: a tenth of the
crowd, yet starting and joining them costs far more memory and time per worker.

Watch for: ten thousand lanes (scroll them, or zoom out) all waiting together; then a red band
while `main` starts the thousand threads, since `thread.start()` waits for each new thread to begin
and so blocks the loop; the thread lanes; the printed cost per task against the cost per thread.
"""

import asyncio
import threading
import time


async def wait_a_bit() -> None:
    await asyncio.sleep(0.5)


def thread_wait() -> None:
    time.sleep(0.5)


async def main() -> None:
    started = time.perf_counter()
    await asyncio.gather(*(wait_a_bit() for _ in range(10_000)))
    tasks = time.perf_counter() - started
    print(f"10,000 tasks waited 0.5 s together in {tasks:.2f} s")

    started = time.perf_counter()
    threads = [threading.Thread(target=thread_wait) for _ in range(1_000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    print(f"1,000 threads waited 0.5 s together in {elapsed:.2f} s")
    print(f"overhead per task {(tasks - 0.5) / 10_000 * 1e6:.0f} µs, "
          f"per thread {(elapsed - 0.5) / 1_000 * 1e6:.0f} µs")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
