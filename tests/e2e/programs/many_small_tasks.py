"""300 small tasks wait on one future and wake together: the iteration that runs them all is
slow, none of them is (the loop's lag, a slow_iteration report, no slow callback)."""
import asyncio
import time

from _scenario import run

TASKS = 300


async def small(gate):
    await gate
    end = time.perf_counter() + 0.0002
    while time.perf_counter() < end:  # MARK: small-work
        pass


async def one_round(n):
    gate = asyncio.get_running_loop().create_future()
    tasks = [asyncio.create_task(small(gate), name=f"small-{i}") for i in range(TASKS)]
    await asyncio.sleep(0.01)       # every task is waiting on the gate
    gate.set_result(None)
    await asyncio.gather(*tasks)


run(one_round)
