"""A test program whose block is inside a module it imports (for the source pane's tests).

Two pickers poll for orders while an auditor recounts the stock. The recount is in
``inventory.py``, and it sleeps with ``time.sleep``: the loop is blocked from a line of the
imported module, not of this script.
"""

import asyncio

import inventory


async def picker(name: str, every: float) -> None:
    for _ in range(6):
        await asyncio.sleep(every)
        print(f"{name}: picked an order")


async def auditor() -> None:
    await asyncio.sleep(0.3)
    total = inventory.recount({"bolts": 40, "nuts": 60})
    print(f"auditor: {total} items")


async def main() -> None:
    await asyncio.gather(picker("north", 0.1), picker("south", 0.15), auditor())


if __name__ == "__main__":
    asyncio.run(main())
