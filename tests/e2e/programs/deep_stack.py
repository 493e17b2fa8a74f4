"""A task that sleeps 18 recursion levels deep: 19 frames of descend, the coroutine, then
Handle._run as the 21st frame, past the default --trace-depth of 20, so Handle._run is not
among the frames kept (at 17 levels it is the 20th)."""
import asyncio
import time

from _scenario import run

LEVELS = 18


def descend(level):
    if level == 0:
        time.sleep(0.05)  # MARK: sleep
        return
    descend(level - 1)


async def deep():
    descend(LEVELS)


async def one_round(n):
    await asyncio.create_task(deep(), name="deep-task")


run(one_round)
