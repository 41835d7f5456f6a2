"""A pytest-asyncio module, run as
`loopviz record -m pytest tests/corpus/test_pytest_asyncio_module.py -p no:cacheprovider`.
(tests/corpus/conftest.py keeps the project's own test run from collecting it.)
"""

import asyncio

import pytest


async def fetch_value(delay: float) -> int:
    await asyncio.sleep(delay)
    return 7


@pytest.mark.asyncio
async def test_sleeps_then_returns():
    assert await fetch_value(0.05) == 7


@pytest.mark.asyncio
async def test_gathers_two_children():
    values = await asyncio.gather(fetch_value(0.02), fetch_value(0.03))
    assert values == [7, 7]
