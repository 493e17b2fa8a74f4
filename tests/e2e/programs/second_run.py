"""Two asyncio.run() calls one after the other, with synchronous work between them."""
import asyncio
import os
import time

ROUNDS = int(os.environ.get("E2E_ROUNDS", "10"))


async def first_blocker():
    time.sleep(0.04)  # MARK: first


async def second_blocker():
    time.sleep(0.045)  # MARK: second


async def main(blocker, name, announce):
    if announce:
        print("ready", flush=True)
        await asyncio.sleep(1.0)     # time for the monitor to attach
    for _ in range(ROUNDS):
        await asyncio.create_task(blocker(), name=name)
        await asyncio.sleep(0.1)


asyncio.run(main(first_blocker, "first-task", True))
time.sleep(0.3)  # MARK: between
asyncio.run(main(second_blocker, "second-task", False))
print("done", flush=True)
