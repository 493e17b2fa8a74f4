"""A task that runs a child process synchronously."""
import asyncio
import subprocess

from _scenario import run


async def spawner():
    subprocess.run(["true"], check=True)  # MARK: subprocess
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(spawner(), name="the-spawner")


run(one_round)
