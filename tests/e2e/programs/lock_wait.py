"""A task that takes a threading.Lock another thread holds for 60 ms.

Each round a holder thread takes the lock and says so; a first task step waits (in a worker
thread) until it does, and the next step takes the lock on the loop: a 60 ms thread-lock wait.
"""
import asyncio
import threading
import time

from _scenario import run

LOCK = threading.Lock()


def hold(taken):
    with LOCK:
        taken.set()
        time.sleep(0.06)


async def taker():
    taken = threading.Event()
    threading.Thread(target=hold, args=(taken,), daemon=True).start()
    await asyncio.to_thread(taken.wait)
    with LOCK:  # MARK: acquire
        pass


async def one_round(n):
    await asyncio.create_task(taker(), name="the-taker")


run(one_round)
