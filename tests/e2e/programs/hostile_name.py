"""A task whose name would forge a report line and take over the operator's terminal."""
import asyncio
import time

from _scenario import run

NAME = "evil\nSLOW TASK DETECTED: 999.0ms\x1b[31m\x1b]0;pwned\x07"


async def blocker():
    time.sleep(0.05)  # MARK: block


async def one_round(n):
    await asyncio.create_task(blocker(), name=NAME)


run(one_round)
