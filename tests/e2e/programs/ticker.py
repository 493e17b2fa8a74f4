"""A single-threaded loop that wakes up every millisecond and does nothing blocking."""
import asyncio

from _scenario import run


async def one_round(n):
    await asyncio.sleep(0)


run(one_round)
