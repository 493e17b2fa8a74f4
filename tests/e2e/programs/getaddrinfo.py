"""A plain call_soon callback that resolves a host name synchronously."""
import asyncio
import socket

from _scenario import run


def resolve():
    socket.getaddrinfo("localhost", 80)  # MARK: getaddrinfo


async def one_round(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.call_soon(resolve)
    loop.call_soon(done.set_result, None)
    await done


run(one_round)
