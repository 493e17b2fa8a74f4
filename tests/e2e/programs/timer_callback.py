"""A plain loop.call_later callback (not a task) that holds the loop for 50 ms of CPU."""
import asyncio
import time

from _scenario import run


def on_timer():
    end = time.perf_counter() + 0.05
    while time.perf_counter() < end:  # MARK: spin
        pass


async def one_round(n):
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.call_later(0.01, on_timer)
    loop.call_later(0.02, fired.set_result, None)
    await fired


run(one_round)
