"""`TaskGroup`: when one child fails, its siblings are cancelled and the errors are grouped.

Three children start in a `TaskGroup`. After half a second one of them raises. The group cancels
the other two at once, waits for them to finish, and raises an `ExceptionGroup` that `main`
handles with `except*`.

Watch for: the failing lane ending with ✘, the two siblings ending with ⊘ at the same moment,
and `main` handling the group.
"""

import asyncio


async def steady(name: str) -> None:
    try:
        await asyncio.sleep(3)
    except asyncio.CancelledError:
        print(f"{name}: cancelled by the group")
        raise


async def flaky() -> None:
    await asyncio.sleep(0.5)
    raise ConnectionError("flaky: lost the connection")


async def main() -> None:
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(steady("steady-1"), name="steady-1")
            group.create_task(flaky(), name="flaky")
            group.create_task(steady("steady-2"), name="steady-2")
    except* ConnectionError as errors:
        print(f"main: the group failed with {[str(e) for e in errors.exceptions]}")


if __name__ == "__main__":
    asyncio.run(main())
