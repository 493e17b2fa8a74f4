"""A task that talks to a slow local TCP server with a blocking socket.

The server runs in a thread of this process started before the loop: it accepts, waits 50 ms,
sends a line and closes.
"""
import asyncio
import socket
import threading
import time

from _scenario import run


def serve(listener):
    while True:
        conn, _ = listener.accept()
        with conn:
            time.sleep(0.05)
            conn.sendall(b"hello\n")


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
PORT = listener.getsockname()[1]
threading.Thread(target=serve, args=(listener,), daemon=True).start()


async def fetcher():
    sock = socket.create_connection(("127.0.0.1", PORT))  # MARK: connect
    try:
        data = sock.recv(100)  # MARK: recv
        assert data == b"hello\n", data
    finally:
        sock.close()
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(fetcher(), name="the-fetcher")


run(one_round)
