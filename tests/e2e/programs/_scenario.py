"""Shared driver for the end-to-end target programs.

A program calls ``run(one_round)``: once its event loop runs it prints ``ready`` and then runs
``await one_round(n)`` every PERIOD seconds until LIFETIME seconds have passed (so a monitor can
attach at any time, and a forgotten target still ends by itself), then prints ``done``.
Environment: E2E_LIFETIME (seconds, default 20), E2E_PERIOD (seconds, default 0.15),
E2E_LOOP_DELAY (seconds to wait before starting the event loop, default 0).
"""
import asyncio
import os
import sys
import time

LIFETIME = float(os.environ.get("E2E_LIFETIME", "20"))
PERIOD = float(os.environ.get("E2E_PERIOD", "0.15"))
LOOP_DELAY = float(os.environ.get("E2E_LOOP_DELAY", "0"))


def run(one_round, setup=None):
    async def main():
        if setup is not None:
            await setup()
        print("ready", flush=True)
        deadline = time.monotonic() + LIFETIME
        n = 0
        while time.monotonic() < deadline:
            await one_round(n)
            n += 1
            await asyncio.sleep(PERIOD)

    if LOOP_DELAY:
        print("waiting-before-loop", flush=True)
        time.sleep(LOOP_DELAY)
    asyncio.run(main())
    print("done", flush=True)
    sys.exit(0)
