"""`create_task`: a task starts as soon as the loop gets to it, and runs while `main` waits.

`main` creates three brewers with different brewing times, then goes on with its own work before
it awaits any of them. Each task starts at the next await of `main`, not when it is awaited, and
they finish in the order of their brewing times, not the order they were created.

Watch for: the three lanes start right after `main` first awaits; `main` keeps working while
they brew; the ✔ marks arrive tea, coffee, cocoa although they were created cocoa, coffee, tea.
"""

import asyncio


async def brew(drink: str, minutes: float) -> str:
    print(f"{drink}: brewing starts")
    await asyncio.sleep(minutes)
    print(f"{drink}: ready")
    return drink


async def main() -> None:
    cocoa = asyncio.create_task(brew("cocoa", 1.5), name="cocoa")
    coffee = asyncio.create_task(brew("coffee", 1.0), name="coffee")
    tea = asyncio.create_task(brew("tea", 0.5), name="tea")
    print("main: three tasks created, none has run yet")
    await asyncio.sleep(0.2)
    print("main: setting the table while they brew")
    await asyncio.sleep(0.2)
    for task in (cocoa, coffee, tea):
        print(f"main: got {await task}")


if __name__ == "__main__":
    asyncio.run(main())
