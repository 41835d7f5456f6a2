"""Why one blocking endpoint freezes a whole async web app.

A tiny HTTP server on loopback, built on asyncio streams with no framework, has three endpoints
that each take half a second:

- `/async`: an `async def` that awaits `asyncio.sleep(0.5)`;
- `/blocking`: an `async def` that calls `time.sleep(0.5)`, blocking the loop;
- `/sync`: a plain `def` that the server runs in the thread pool with `asyncio.to_thread`.

Three clients hit each endpoint at once.

Watch for: `/async` and `/sync` serve all three in about 0.5 s; `/blocking` takes 1.5 s, one
request after another, with a red band for each, and while it blocks no other connection (not even
a new client) gets any attention.
"""

import asyncio
import time


async def endpoint_async() -> str:
    await asyncio.sleep(0.5)
    return "awaited"


async def endpoint_blocking() -> str:
    time.sleep(0.5)  # a blocking call inside async def: the whole server stops
    return "blocked everyone"


def endpoint_sync() -> str:
    time.sleep(0.5)  # blocking too, but the server runs it in a worker thread
    return "ran in a thread"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readline()
    path = request.split()[1].decode()
    while await reader.readline() not in (b"\r\n", b""):
        pass  # skip the headers
    if path == "/async":
        body = await endpoint_async()
    elif path == "/blocking":
        body = await endpoint_blocking()
    else:
        body = await asyncio.to_thread(endpoint_sync)
    writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
    await writer.drain()
    writer.close()


async def client(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    return response.decode().rsplit("\r\n", 1)[-1]


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"server: listening on 127.0.0.1:{port}")
    for path in ("/async", "/blocking", "/sync"):
        started = time.perf_counter()
        bodies = await asyncio.gather(*(client(port, path) for _ in range(3)))
        print(f"{path}: 3 requests in {time.perf_counter() - started:.2f} s ({bodies[0]})")
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
