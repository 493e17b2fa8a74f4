"""Tasks run one after another, each for two steps that stat a path named after the task. Only
the Task holds its name, so a finished Task, its name and its coroutine are freed before the
next ones are made, and come back at the same addresses: each report must still name its own
Task (short names, and long ones)."""
import asyncio
import os

from _scenario import run


def stat(path):
    try:
        os.stat(path)
    except FileNotFoundError:
        pass


async def worker():
    name = asyncio.current_task().get_name()
    stat("/nonexistent/" + name)  # MARK: first-stat
    del name
    await asyncio.sleep(0)
    stat("/nonexistent/" + asyncio.current_task().get_name())  # MARK: second-stat


async def one_round(n):
    for k in range(20):
        await asyncio.create_task(
            worker(), name=f"t-{n:03d}-{k:02d}" if k % 4 else f"a-task-with-a-long-name-{n}-{k}")


run(one_round)
