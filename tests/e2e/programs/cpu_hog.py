"""A named task that holds the loop with 80 ms of pure Python computation (no syscalls)."""
import time

from _scenario import run


def spin(seconds):
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:  # MARK: spin
        x += 1
    return x


async def crunch():
    spin(0.08)  # MARK: crunch


async def one_round(n):
    import asyncio
    await asyncio.create_task(crunch(), name="the-cruncher")


run(one_round)
