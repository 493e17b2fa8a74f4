"""Benchmark workloads for tools/bench.py.

Prints "ready" once its loop runs, waits for a line on stdin (so the monitor
can attach first), runs the workload and prints the elapsed seconds, then waits for
the end of stdin before it exits (so the monitor is still there to be measured).
  sleep0  N  : N `await asyncio.sleep(0)` steps spread over 10 tasks
  fileio N   : N steps that each os.stat and read a small file
"""
import asyncio
import os
import sys
import tempfile
import time


async def sleep0(n):
    async def worker(k):
        for _ in range(k):
            await asyncio.sleep(0)
    await asyncio.gather(*(worker(n // 10) for _ in range(10)))


async def fileio(n):
    fd, path = tempfile.mkstemp(prefix="aiocopd-bench-")
    os.write(fd, b"x" * 512)
    os.close(fd)
    try:
        for _ in range(n):
            os.stat(path)
            with open(path, "rb") as f:
                f.read()
            await asyncio.sleep(0)
    finally:
        os.unlink(path)


async def main(kind, n):
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start = time.perf_counter()
    await {"sleep0": sleep0, "fileio": fileio}[kind](n)
    print(f"{time.perf_counter() - start:.6f}", flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
sys.stdin.read()
