"""A named task that blocks the loop with time.sleep(0.06), repeatedly."""
import asyncio
import time

from _scenario import run


async def sleeper():
    time.sleep(0.06)  # MARK: sleep
    await asyncio.sleep(0.05)


async def one_round(n):
    await asyncio.create_task(sleeper(), name="the-sleeper")


run(one_round)
