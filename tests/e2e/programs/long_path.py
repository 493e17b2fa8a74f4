"""A task that opens a file whose path is longer than 100 characters. argv[1]: the file."""
import asyncio
import sys

from _scenario import run

PATH = sys.argv[1]


async def opener():
    with open(PATH, "w") as f:  # MARK: open
        f.write("x")
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(opener(), name="the-opener")


run(one_round)
