"""Eight named tasks that each block the loop once with time.sleep(0.05), and an exit right
after the last: reports that BPF made just before the process went away. With E2E_START_FILE
the loop idles until that file exists (so a monitor can attach first); E2E_HARD_EXIT=1 ends
with os._exit, which skips the interpreter's finalization."""
import asyncio
import os
import time

SLOW_CALLBACKS = 8
START_FILE = os.environ.get("E2E_START_FILE")


async def slow(i):
    time.sleep(0.05)  # MARK: sleep


async def main():
    print("ready", flush=True)
    give_up = time.monotonic() + 60
    while START_FILE and not os.path.exists(START_FILE) and time.monotonic() < give_up:
        await asyncio.sleep(0.01)
    for i in range(SLOW_CALLBACKS):
        await asyncio.create_task(slow(i), name=f"short-{i}")


asyncio.run(main())
if os.environ.get("E2E_HARD_EXIT") == "1":
    os._exit(0)
