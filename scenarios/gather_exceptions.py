"""Exceptions in `gather`: the first one propagates, unless `return_exceptions=True`.

Three jobs, one of which fails. Without `return_exceptions`, `main` gets the first exception
while the other jobs keep running (they are not cancelled). With `return_exceptions=True`,
`main` waits for all three and gets the exception back as a value in the list.

Watch for: in the first round `main` resumes as soon as the failing job raises, while the others
are still waiting; in the second it waits for all three.
"""

import asyncio


async def job(name: str, seconds: float, fail: bool = False) -> str:
    await asyncio.sleep(seconds)
    if fail:
        raise ValueError(f"{name} failed")
    print(f"{name}: done")
    return name


async def main() -> None:
    try:
        await asyncio.gather(job("a", 0.8), job("b", 0.3, fail=True), job("c", 0.6))
    except ValueError as error:
        print(f"main: gather raised {error!r}; a and c are still running")
    await asyncio.sleep(0.8)
    results = await asyncio.gather(
        job("d", 0.8), job("e", 0.3, fail=True), job("f", 0.6), return_exceptions=True
    )
    print(f"main: with return_exceptions=True: {results}")


if __name__ == "__main__":
    asyncio.run(main())
