"""The stock, counted the slow way (imported by warehouse.py)."""

import time


def recount(stock: dict[str, int]) -> int:
    total = 0
    for count in stock.values():
        total += count
    time.sleep(0.4)  # a blocking call inside the imported module
    return total
