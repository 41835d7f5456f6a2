"""Awaiting one after another vs `asyncio.gather`: the sum of the waits vs the longest.

`main` first awaits two 2-second downloads one after the other: about 4 s, and only one lane is
ever waiting at a time. Then it runs the same two downloads with `asyncio.gather`: both wait at
once, and the pair takes about 2 s.

Watch for: in the first half a single lane waits at a time; in the second, two lanes wait side by
side while `main` waits on the gather. The two totals are printed at the end.
"""

import asyncio
import time


async def download(name: str, seconds: float) -> str:
    print(f"{name}: started")
    await asyncio.sleep(seconds)
    print(f"{name}: finished after {seconds} s")
    return name


async def main() -> None:
    started = time.perf_counter()
    await download("one-by-one A", 2.0)
    await download("one-by-one B", 2.0)
    sequential = time.perf_counter() - started

    started = time.perf_counter()
    await asyncio.gather(download("gathered A", 2.0), download("gathered B", 2.0))
    gathered = time.perf_counter() - started
    print(f"one after another: {sequential:.1f} s; gather: {gathered:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
