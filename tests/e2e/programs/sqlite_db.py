"""A task that writes to an SQLite database file synchronously. argv[1]: database path."""
import asyncio
import sqlite3
import sys

from _scenario import run

DB = sys.argv[1]


async def recorder(n):
    conn = sqlite3.connect(DB)  # MARK: connect
    conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER, s TEXT)")
    for i in range(20):
        conn.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * i))
    conn.commit()  # MARK: commit
    conn.close()
    await asyncio.sleep(0)


async def one_round(n):
    await asyncio.create_task(recorder(n), name="the-recorder")


run(one_round)
