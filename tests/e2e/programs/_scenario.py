"""Shared driver for the end-to-end target programs.

A program calls ``run(one_round)``: once its event loop runs it prints ``ready`` and then runs
``await one_round(n)`` every PERIOD seconds until LIFETIME seconds have passed (so a monitor can
attach at any time, and a forgotten target still ends by itself), then prints ``done``.
Environment: E2E_LIFETIME (seconds, default 20), E2E_PERIOD (seconds, default 0.15),
E2E_LOOP_DELAY (seconds to wait before starting the event loop, default 0), E2E_START_FILE
(a path: print ``waiting-for-start-file``, wait until that file exists, then apply the delay).
"""
import asyncio
import os
import sys
import time

LIFETIME = float(os.environ.get("E2E_LIFETIME", "20"))
PERIOD = float(os.environ.get("E2E_PERIOD", "0.15"))
LOOP_DELAY = float(os.environ.get("E2E_LOOP_DELAY", "0"))
START_FILE = os.environ.get("E2E_START_FILE")


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

    if START_FILE:
        print("waiting-for-start-file", flush=True)
        give_up = time.monotonic() + 60
        while not os.path.exists(START_FILE):
            if time.monotonic() > give_up:
                sys.exit("start file never appeared")
            time.sleep(0.01)
    if LOOP_DELAY:
        time.sleep(LOOP_DELAY)
    asyncio.run(main())
    print("done", flush=True)
    sys.exit(0)
