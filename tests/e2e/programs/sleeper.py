"""A named task that blocks the loop with time.sleep(0.06), repeatedly."""
import asyncio
import sys
import time


async def sleeper():
    time.sleep(0.06)
    await asyncio.sleep(0.05)


async def main():
    print("ready", flush=True)
    for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1000):
        await asyncio.create_task(sleeper(), name="the-sleeper")
        await asyncio.sleep(0.1)


asyncio.run(main())
