"""A named task that blocks the loop for 40 ms each round and says when (wall clock)."""
import asyncio
import time

from _scenario import run


async def stall():
    print(f"blocking {time.time():.6f}", flush=True)  # MARK: say
    time.sleep(0.04)  # MARK: block


async def one_round(n):
    await asyncio.create_task(stall(), name="stalling-task")


run(one_round)
