"""A `Lock` guarding shared state, and the contention it causes.

Five tellers update one balance. Reading, thinking (an await) and writing back without a lock
loses updates; with an `asyncio.Lock` each update is whole, but the tellers queue for it.

Watch for: in the first round the final balance is wrong. In the second, one teller at a time
holds the lock while the others wait on "Lock", in a queue that empties one by one.
"""

import asyncio


class Account:
    def __init__(self) -> None:
        self.balance = 0


async def deposit_unsafely(account: Account) -> None:
    balance = account.balance
    await asyncio.sleep(0.1)  # another task runs here and reads the same old balance
    account.balance = balance + 10


async def deposit_safely(account: Account, lock: asyncio.Lock) -> None:
    async with lock:
        balance = account.balance
        await asyncio.sleep(0.1)
        account.balance = balance + 10


async def main() -> None:
    racy = Account()
    await asyncio.gather(*(deposit_unsafely(racy) for _ in range(5)))
    print(f"without a lock: balance {racy.balance} (expected 50)")

    safe, lock = Account(), asyncio.Lock()
    tellers = [
        asyncio.create_task(deposit_safely(safe, lock), name=f"teller-{n}") for n in range(5)
    ]
    await asyncio.gather(*tellers)
    print(f"with a lock: balance {safe.balance} (expected 50)")


if __name__ == "__main__":
    asyncio.run(main())
