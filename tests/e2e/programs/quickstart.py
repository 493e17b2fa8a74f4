"""aiocop's quick start: two tasks that each write to /dev/null (fast, but blocking I/O)."""
import asyncio

from _scenario import run


async def writer():
    with open("/dev/null", "w") as f:  # MARK: open
        f.write("x")
    await asyncio.sleep(0)


async def one_round(n):
    a = asyncio.create_task(writer(), name=f"writer-a-{n}")
    b = asyncio.create_task(writer(), name=f"writer-b-{n}")
    await asyncio.gather(a, b)


run(one_round)
