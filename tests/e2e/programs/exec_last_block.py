"""Blocks its loop once, in its last callback, and exits at once: the report must not be
lost to the process being gone by the time it is read."""
import asyncio
import time


async def last_words():
    time.sleep(0.1)  # MARK: block


async def main():
    await asyncio.create_task(last_words(), name="last-words")


asyncio.run(main())
