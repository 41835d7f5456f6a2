"""Event loops built directly, not by asyncio.run: a SelectorEventLoop with run_until_complete,
uvloop.new_event_loop() or uvloop.Loop(), or a loop from a custom event loop policy. Each runs a
coroutine that blocks the loop for 150 ms.

    python loop_direct.py [selector|uvloop-new|uvloop-class|policy]
"""

import asyncio
import sys
import time


async def ticker() -> int:
    count = 0
    for _ in range(5):
        await asyncio.sleep(0.02)
        count += 1
    return count


async def blocker() -> None:
    await asyncio.sleep(0.03)
    time.sleep(0.15)


async def main() -> int:
    ticks, _ = await asyncio.gather(ticker(), blocker())
    return ticks


class MyLoop(asyncio.SelectorEventLoop):
    pass


class MyPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        return MyLoop()


def make_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "selector":
        return asyncio.SelectorEventLoop()
    if kind == "uvloop-new":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "uvloop-class":
        import uvloop

        return uvloop.Loop()
    if kind == "policy":
        asyncio.set_event_loop_policy(MyPolicy())
        return asyncio.new_event_loop()
    raise SystemExit(f"unknown loop kind {kind!r}")


kind = sys.argv[1] if len(sys.argv) > 1 else "selector"
loop = make_loop(kind)
try:
    print(kind, type(loop).__name__, "ticks", loop.run_until_complete(main()))
finally:
    loop.close()
