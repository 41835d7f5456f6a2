"""FastAPI on uvicorn, run as a user runs it: a server and an httpx client in one program.

Endpoints: one that awaits a sleep, one that blocks the loop with time.sleep, and a plain `def`
one that Starlette runs in anyio's thread pool. `--loop uvloop` runs everything on uvloop.
"""

import argparse
import asyncio
import socket
import time

import httpx
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/items/{item_id}")
async def read_item(item_id: int):
    await asyncio.sleep(0.05)
    return {"item_id": item_id}


@app.get("/slow")
async def slow_endpoint():
    time.sleep(0.25)
    return {"slow": True}


@app.get("/sync")
def sync_endpoint():
    time.sleep(0.05)
    return {"sync": True}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main(loop_name: str) -> None:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", loop=loop_name, http="h11"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(), name="server")
    while not server.started:
        await asyncio.sleep(0.01)
    # plain http: no TLS context to build (loading certificates would block the loop)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", verify=False) as client:
        items = await asyncio.gather(*(client.get(f"/items/{i}") for i in range(3)))
        print("items", [r.json()["item_id"] for r in items])
        print("slow", (await client.get("/slow")).json())
        print("sync", (await client.get("/sync")).json())
    server.should_exit = True
    await serving
    print("server stopped")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    options = parser.parse_args()
    if options.loop == "uvloop":
        import uvloop

        uvloop.run(main("none"))
    else:
        asyncio.run(main("none"))
