"""The sleeper and a slow timer callback on uvloop's event loop."""
import asyncio
import time

import uvloop

from _scenario import run


async def sleeper():
    time.sleep(0.05)  # MARK: sleep


def on_timer():
    time.sleep(0.04)  # MARK: timer


async def one_round(n):
    asyncio.get_running_loop().call_later(0.01, on_timer)
    await asyncio.create_task(sleeper(), name="uv-sleeper")


uvloop.install()
run(one_round)
