"""A reader callback registered with loop.add_reader that blocks when its socket is readable."""
import asyncio
import socket
import time

from _scenario import run

pair = {}


def on_readable():
    time.sleep(0.05)  # MARK: sleep
    pair["r"].recv(16)


async def setup():
    r, w = socket.socketpair()
    r.setblocking(False)
    pair.update(r=r, w=w)
    asyncio.get_running_loop().add_reader(r.fileno(), on_readable)


async def one_round(n):
    pair["w"].send(b"x")
    await asyncio.sleep(0.08)


run(one_round, setup)
