#!/usr/bin/env python3
"""The aiohttp service the benchmarks in tools/ load with wrk (Debian's python3-aiohttp and wrk).

Endpoints: `/` answers a small JSON document; `/file` opens and reads a small file and
answers its bytes. The server runs on CPU 0 and wrk on CPU 1, so that neither takes the
other's CPU.

  python3 tools/bench_http.py PORT [TAG]

serves until killed and prints "ready" once it listens (TAG only marks the command line, for
a service rule to select). tools/bench_service.py starts it so; tools/bench_workload.py runs
the same application in its own loop (LoadedService) and takes wrk's rate.
"""
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time

SERVER_CPU, LOAD_CPU = 0, 1
SMALL_FILE_BYTES = 512
WARMUP_S = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def small_file():
    """A new file of SMALL_FILE_BYTES bytes; the caller unlinks it."""
    fd, path = tempfile.mkstemp(prefix="aiocopd-bench-")
    os.write(fd, b"x" * SMALL_FILE_BYTES)
    os.close(fd)
    return path


def make_app(path):
    from aiohttp import web

    async def hello(request):
        return web.json_response({"ok": True, "n": 42})

    async def read_file(request):
        with open(path, "rb") as f:
            return web.Response(body=f.read())

    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/file", read_file)
    return app


def wrk_once(port, seconds, path="/"):
    """Requests a second that wrk (one thread, 32 connections, on LOAD_CPU) got from path."""
    out = subprocess.run(["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", "-c32", f"-d{seconds}s",
                          f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"no rate in wrk's output:\n{out}")


class LoadedService:
    """The application served from the running loop. start() also warms it up, so that a
    monitor attached after it finds a service running, not one importing and starting."""

    def __init__(self):
        from aiohttp import web

        self.data = small_file()
        self.port = free_port()
        self.runner = web.AppRunner(make_app(self.data), access_log=None)

    async def start(self, path):
        from aiohttp import web

        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        await self.wrk(WARMUP_S, path)

    async def wrk(self, seconds, path):
        # wrk blocks its caller: a thread waits for it, the loop serves
        return await asyncio.get_running_loop().run_in_executor(None, wrk_once, self.port,
                                                                 seconds, path)

    async def load(self, path, seconds, clock=time.perf_counter):
        """Requests per second of clock (wall time, or the process's CPU time) on path."""
        start = clock()
        rate = await self.wrk(seconds, path)
        # wrk's rate is per wall second of its run: per second of clock, the same requests
        return rate * seconds / (clock() - start) if clock is not time.perf_counter else rate

    async def stop(self):
        await self.runner.cleanup()
        os.unlink(self.data)


def pin_to_server_cpu():
    """Before any thread starts: every thread of the process inherits it."""
    os.sched_setaffinity(0, {SERVER_CPU})


def main():
    from aiohttp import web

    pin_to_server_cpu()
    data = small_file()
    try:
        web.run_app(make_app(data), host="127.0.0.1", port=int(sys.argv[1]),
                    print=lambda *a: print("ready", flush=True), access_log=None)
    finally:
        os.unlink(data)


if __name__ == "__main__":
    main()
