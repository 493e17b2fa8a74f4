"""One task step stats a file five times from different places: a generator resumed from two
lines, a helper called from two lines, then sleeps past the threshold. Every operation's trace
must name its own callers, while the frames below the step (Handle._run and the loop) are the
same for all of them: aiocopd walks those once per callback and reuses them."""
import asyncio
import os
import time

from _scenario import run

PATH = os.path.abspath(__file__)


def stat_once():
    os.stat(PATH)  # MARK: helper-stat


def stats_forever():
    while True:
        os.stat(PATH)  # MARK: gen-stat
        yield


async def one_round(n):
    await asyncio.create_task(walker(), name="the-walker")


async def walker():
    gen = stats_forever()
    next(gen)  # MARK: first-next
    stat_once()  # MARK: helper-a
    next(gen)  # MARK: second-next
    stat_once()  # MARK: helper-b
    os.stat(PATH)  # MARK: own-stat
    time.sleep(0.05)  # MARK: slow


run(one_round)
