"""A named task whose step does nothing but collect a heap of reference cycles that an earlier
step built with the collector off: the step's time is the collection's (reason gc)."""
import asyncio
import gc

from _scenario import run


class Node:
    def __init__(self):
        self.other = self


async def one_round(n):
    await asyncio.create_task(collector(), name="the-collector")


async def collector():
    gc.disable()            # the building step must not collect: only the next one does
    keep = [Node() for _ in range(200_000)]
    del keep
    await asyncio.sleep(0)
    gc.collect()  # MARK: collect
    gc.enable()


run(one_round)
