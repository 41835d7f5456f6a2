"""An aiohttp web server and an aiohttp client in one program, as their users write them.

Two requests hit a handler that blocks the loop with time.sleep(0.25): two separate blocks.
`--loop uvloop` runs it on uvloop.
"""

import asyncio
import socket
import sys
import time

from aiohttp import ClientSession, web


async def hello(request: web.Request) -> web.Response:
    await asyncio.sleep(0.02)
    return web.Response(text=f"hello {request.match_info['name']}")


async def blocking(request: web.Request) -> web.Response:
    time.sleep(0.25)
    return web.Response(text="blocked")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def fetch(session: ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return await response.text()


async def main() -> None:
    app = web.Application()
    app.add_routes([web.get("/hello/{name}", hello), web.get("/block", blocking)])
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    base = f"http://127.0.0.1:{port}"
    async with ClientSession() as session:
        greetings = await asyncio.gather(*(fetch(session, f"{base}/hello/{n}") for n in "abcd"))
        print(greetings)
        print(await fetch(session, f"{base}/block"))
        print(await fetch(session, f"{base}/block"))
    await runner.cleanup()
    print("done")


if "--loop" in sys.argv and sys.argv[sys.argv.index("--loop") + 1] == "uvloop":
    import uvloop

    uvloop.run(main())
else:
    asyncio.run(main())
