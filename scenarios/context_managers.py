"""Async context managers: `async with`, `@asynccontextmanager` and `AsyncExitStack`.

Opening and closing a connection both await (a handshake, a goodbye). A class with
`__aenter__`/`__aexit__`, a generator with `@asynccontextmanager`, and an `AsyncExitStack`
holding several at once all run their setup and teardown as awaits on the loop.

Watch for: `main` waiting during each setup and each teardown; the stack closing its
connections in reverse order of opening.
"""

import asyncio
import contextlib


class Connection:
    def __init__(self, name: str) -> None:
        self.name = name

    async def __aenter__(self) -> "Connection":
        await asyncio.sleep(0.2)
        print(f"{self.name}: connected")
        return self

    async def __aexit__(self, *exc_info) -> None:
        await asyncio.sleep(0.1)
        print(f"{self.name}: closed")


@contextlib.asynccontextmanager
async def transaction(name: str):
    await asyncio.sleep(0.1)
    print(f"{name}: begin")
    try:
        yield name
    finally:
        await asyncio.sleep(0.1)
        print(f"{name}: commit")


async def main() -> None:
    async with Connection("db") as db, transaction("tx-1"):
        print(f"main: working with {db.name}")
        await asyncio.sleep(0.2)
    async with contextlib.AsyncExitStack() as stack:
        for name in ("cache", "queue", "search"):
            await stack.enter_async_context(Connection(name))
        print("main: three connections open")


if __name__ == "__main__":
    asyncio.run(main())
