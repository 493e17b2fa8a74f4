"""Two tasks that compute without blocking: one for 100 ms, one for 150 ms."""
import asyncio
import time

from _scenario import run


def spin(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1  # MARK: spin
    return n


async def short_stall():
    spin(0.1)


async def long_stall():
    spin(0.15)


async def one_round(n):
    await asyncio.create_task(short_stall(), name="stall-100")
    await asyncio.create_task(long_stall(), name="stall-150")


run(one_round)
