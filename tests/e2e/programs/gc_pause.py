"""A named task that builds reference cycles and collects them: a garbage-collector pause."""
import gc

from _scenario import run


class Node:
    def __init__(self):
        self.other = self


def churn():
    keep = [Node() for _ in range(200_000)]
    del keep
    gc.collect()  # MARK: collect


async def one_round(n):
    import asyncio
    await asyncio.create_task(collector(), name="the-collector")


async def collector():
    churn()


run(one_round)
