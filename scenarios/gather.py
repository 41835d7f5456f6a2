"""Awaiting one after another vs `asyncio.gather`.

First `main` awaits two 1-second downloads one after the other: about 2 s, and only one lane is
ever waiting at a time. Then it runs the same two downloads with `asyncio.gather`: both lanes wait
at once, and the whole thing takes about 1 s, the longest wait rather than the sum.

Watch for: in the second half, two lanes waiting side by side under one `gather` in `main`'s lane.
The results come back in argument order, whichever download finished first.
"""

import asyncio
import time


async def download(name: str, seconds: float) -> str:
    print(f"{name}: started")
    await asyncio.sleep(seconds)
    print(f"{name}: finished after {seconds} s")
    return f"{name} ({seconds} s)"


async def main() -> None:
    started = time.perf_counter()
    first = await download("one-by-one A", 1.0)
    second = await download("one-by-one B", 0.8)
    print(f"sequential: {[first, second]} in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    results = await asyncio.gather(download("gathered A", 1.0), download("gathered B", 0.8))
    print(f"gather: {results} in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    asyncio.run(main())
