"""A task that sleeps in C through ctypes: no audit event, only the kernel sees it."""
import asyncio
import ctypes

from _scenario import run

libc = ctypes.CDLL("libc.so.6", use_errno=True)


async def native_napper():
    libc.usleep(50000)  # MARK: usleep
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(native_napper(), name="the-native-napper")


run(one_round)
