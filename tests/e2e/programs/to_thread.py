"""One task moves a 0.1 s sleep to a worker thread (not a loop block); another blocks for real."""
import asyncio
import time

from _scenario import run


async def offload():
    await asyncio.to_thread(time.sleep, 0.1)  # MARK: to_thread


async def blocker():
    await asyncio.sleep(0.01)
    time.sleep(0.05)  # MARK: blocker


async def one_round(n):
    await asyncio.gather(asyncio.create_task(offload(), name="the-offloader"),
                         asyncio.create_task(blocker(), name="the-blocker"))


async def warm_up():
    # start the default executor's worker thread before anyone watches
    await asyncio.to_thread(time.sleep, 0)


run(one_round, setup=warm_up)
