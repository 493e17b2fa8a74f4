"""A small asyncio service with the mistakes aiocopd exists to find.

Every second it serves a few "requests"; some of them block the event loop:
a synchronous sleep, a file read on the loop, a DNS lookup, a CPU-heavy
checksum and a slow timer callback. Run it and point aiocopd at its PID.
"""
import asyncio
import hashlib
import os
import socket
import sys
import tempfile
import time

DATA = os.path.join(tempfile.gettempdir(), f"aiocopd-demo-{os.getpid()}.dat")


async def handle_login():
    time.sleep(0.045)                        # a blocking call left in async code
    await asyncio.sleep(0)


async def load_config():
    with open(DATA, "rb") as f:              # file I/O on the loop
        f.read()
    await asyncio.sleep(0)


async def resolve_backend():
    socket.getaddrinfo("localhost", 8080)    # DNS on the loop
    await asyncio.sleep(0)


async def checksum():
    digest = b""
    deadline = time.perf_counter() + 0.05
    while time.perf_counter() < deadline:    # CPU work that should be offloaded
        digest = hashlib.sha256(digest).digest()
    await asyncio.sleep(0)


def flush_metrics():
    time.sleep(0.035)                        # a slow plain callback


async def main(seconds):
    with open(DATA, "wb") as f:
        f.write(os.urandom(4096))
    print(f"demo app running as PID {os.getpid()}", flush=True)
    loop = asyncio.get_running_loop()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await asyncio.gather(
            asyncio.create_task(handle_login(), name="login-handler"),
            asyncio.create_task(load_config(), name="config-loader"),
            asyncio.create_task(resolve_backend(), name="backend-resolver"),
            asyncio.create_task(checksum(), name="checksum"),
        )
        loop.call_later(0.01, flush_metrics)
        await asyncio.sleep(1)
    os.unlink(DATA)


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60))
