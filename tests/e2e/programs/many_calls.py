"""A task step that makes CALLS blocking calls (os.stat of one file) in one go: far more
operations than aiocopd itemises per callback (E2E_CALLS, default 3000)."""
import asyncio
import os

from _scenario import run

CALLS = int(os.environ.get("E2E_CALLS", "3000"))


async def stat_storm():
    for _ in range(CALLS):
        os.stat(__file__)  # MARK: stat


async def one_round(n):
    await asyncio.create_task(stat_storm(), name="stat-storm")


run(one_round)
