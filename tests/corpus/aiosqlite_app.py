"""aiosqlite as its users write it: create a table, insert rows, select them back."""

import asyncio

import aiosqlite


async def main() -> None:
    async with aiosqlite.connect(":memory:") as db:
        await db.execute("CREATE TABLE fruit (name TEXT, weight INTEGER)")
        await db.executemany(
            "INSERT INTO fruit VALUES (?, ?)", [("apple", 150), ("pear", 170), ("fig", 40)]
        )
        await db.commit()
        async with db.execute("SELECT name, weight FROM fruit ORDER BY weight") as cursor:
            rows = await cursor.fetchall()
    print(rows)


asyncio.run(main())
