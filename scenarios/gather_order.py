"""`gather` returns results in the order of its arguments, whatever order the tasks finish in.

Four lookups take different times: the slowest is first in the argument list, the fastest last.
They finish fastest-first, but `gather` hands back a list in argument order.

Watch for: the ✔ marks land right to left down the lanes (fastest first), then `main` resumes
once, after the last one, and prints the results in argument order.
"""

import asyncio


async def lookup(host: str, seconds: float) -> str:
    await asyncio.sleep(seconds)
    print(f"{host}: answered after {seconds} s")
    return host


async def main() -> None:
    hosts = {"slow.example": 2.0, "medium.example": 1.2, "quick.example": 0.6, "fast.example": 0.2}
    results = await asyncio.gather(*(lookup(host, delay) for host, delay in hosts.items()))
    print(f"gather returned: {results}")


if __name__ == "__main__":
    asyncio.run(main())
