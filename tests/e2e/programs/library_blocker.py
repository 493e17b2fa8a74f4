"""A task calls a library installed under site-packages that blocks (like a sync redis BLPOP):
entry_point is the application's frame that called the library, not the library's own."""
import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor",
                                "site-packages"))
import slowlib  # noqa: E402

from _scenario import run  # noqa: E402


async def one_round(n):
    await asyncio.create_task(worker(), name="the-worker")


async def worker():
    slowlib.fetch_blocking()  # MARK: call-library


run(one_round)
