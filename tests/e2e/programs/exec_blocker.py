"""Blocks its loop in its very first callback, then twice more; exits with argv[1] (default 0)."""
import asyncio
import sys
import time


async def first_thing():
    time.sleep(0.05)  # MARK: block


async def main():
    for _ in range(3):
        await asyncio.create_task(first_thing(), name="eager-blocker")


asyncio.run(main())
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
