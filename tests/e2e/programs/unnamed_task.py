"""A blocking step in a task created without a name (3.12+ keeps its counter as an int)."""
import asyncio
import time

from _scenario import run


async def anonymous():
    time.sleep(0.04)  # MARK: sleep


async def one_round(n):
    await asyncio.create_task(anonymous())


run(one_round)
