"""A task that asks a local database server for work with a blocking socket, as a sync
client (redis-py, psycopg2) does inside a handler: the server answers in 60 ms.

The server is a thread of this process, listening on the first free port of a database
server (Redis's, PostgreSQL's, ...: aiocopd knows a database by the port it talks to), and
answers every RESP command with one reply after 60 ms. It prints "database port N" first.
"""
import asyncio
import socket
import threading
import time

from _scenario import run

DATABASE_PORTS = (6379, 5432, 3306, 27017, 1433, 1521, 9042, 9000)
BLPOP = b"*3\r\n$5\r\nBLPOP\r\n$4\r\njobs\r\n$1\r\n0\r\n"


def listen():
    for port in DATABASE_PORTS:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", port))
        except OSError:
            listener.close()
            continue
        listener.listen(4)
        return listener, port
    raise SystemExit(f"every database port is taken: {DATABASE_PORTS}")


def serve(conn):
    with conn:
        while conn.recv(4096):
            time.sleep(0.06)
            conn.sendall(b"*2\r\n$4\r\njobs\r\n$3\r\njob\r\n")


def accept(listener):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


listener, PORT = listen()
threading.Thread(target=accept, args=(listener,), daemon=True).start()
print(f"database port {PORT}", flush=True)
client = socket.create_connection(("127.0.0.1", PORT))


async def worker():
    client.sendall(BLPOP)
    reply = client.recv(4096)  # MARK: recv
    assert reply.startswith(b"*2\r\n"), reply
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(worker(), name="the-worker")


run(one_round)
