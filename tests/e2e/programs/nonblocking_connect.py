"""A task that connects to a local asyncio server and exchanges a line, all non-blocking.

asyncio's own connect returns EINPROGRESS on a non-blocking socket and the loop waits for it:
nothing here blocks the loop, so even with --all nothing is reported.
"""
import asyncio

from _scenario import run

SERVER = {}


async def echo(reader, writer):
    writer.write(await reader.readline())
    await writer.drain()
    writer.close()


async def setup():
    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    SERVER["port"] = server.sockets[0].getsockname()[1]
    SERVER["server"] = server


async def client():
    reader, writer = await asyncio.open_connection("127.0.0.1", SERVER["port"])
    writer.write(b"ping\n")
    assert await reader.readline() == b"ping\n"
    writer.close()
    await writer.wait_closed()


async def one_round(n):
    await asyncio.create_task(client(), name="the-connector")


run(one_round, setup)
