"""Benchmark workloads for tools/bench.py and tools/bench_tiers.py.

Prints "ready" once its loop runs, waits for a line on stdin (so the monitor
can attach first), runs the workload and prints the elapsed seconds, then waits for
the end of stdin before it exits (so the monitor is still there to be measured).
  sleep0  N  : N `await asyncio.sleep(0)` steps spread over 10 tasks
  fileio N   : N steps that each os.stat and read a small file
  http_json N: N seconds of wrk on tools/bench_http.py's JSON endpoint, served by this loop
  http_file N: the same on its endpoint that opens and reads a small file
The http_ workloads serve and are warmed up before "ready", and print the requests a second
wrk got instead of the elapsed seconds.
With AIOCOPD_BENCH_CLOCK=cpu in the environment, time is the process's CPU time (user and
system: the kernel's probes and BPF programs run on the target's time), so other load on the
machine does not count; the http_ workloads then print requests per CPU second.
"""
import asyncio
import os
import sys
import time

from bench_http import LoadedService, pin_to_server_cpu, small_file

CLOCK = time.process_time if os.environ.get("AIOCOPD_BENCH_CLOCK") == "cpu" else time.perf_counter


async def sleep0(n):
    async def worker(k):
        for _ in range(k):
            await asyncio.sleep(0)
    await asyncio.gather(*(worker(n // 10) for _ in range(10)))


async def fileio(n):
    path = small_file()
    try:
        for _ in range(n):
            os.stat(path)
            with open(path, "rb") as f:
                f.read()
            await asyncio.sleep(0)
    finally:
        os.unlink(path)


WORKLOADS = {"sleep0": sleep0, "fileio": fileio}
HTTP_PATHS = {"http_json": "/", "http_file": "/file"}


async def main(kind, n):
    service = None
    if kind in HTTP_PATHS:
        pin_to_server_cpu()  # only this thread exists yet: the executor's inherit it
        service = LoadedService()
        await service.start(HTTP_PATHS[kind])
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    start = CLOCK()
    try:
        if service:
            rate = await service.load(HTTP_PATHS[kind], n, CLOCK)
        else:
            rate = await WORKLOADS[kind](n)
    finally:
        if service:
            await service.stop()
    print(f"{CLOCK() - start if rate is None else rate:.6f}", flush=True)


asyncio.run(main(sys.argv[1], int(sys.argv[2])))
sys.stdin.read()
