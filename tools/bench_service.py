#!/usr/bin/env python3
"""What `aiocopd service` costs (issue 12's numbers; figures in docs/PERFORMANCE.md).

  sudo tools/bench_service.py [--aiocopd build/aiocopd] [--python /usr/bin/python3.11]
                              [--only idle,busy,latency,aiohttp] [--runs 5] [--seconds 20]

idle     20 idle asyncio processes watched: the service's CPU (share of one core, from
         /proc/PID/stat over --seconds) and its RSS.
busy     the same 20 processes running 50,000 callbacks a second between them.
latency  from a matching process's exec to its "watching PID" line (the first probe is on by
         then), over 20 processes started one after the other: median and max.
aiohttp  an aiohttp server (python3-aiohttp) on CPU 0 under wrk on CPU 1: requests a second
         unmonitored and watched by the service, alternating, --runs of each; the ratio of
         the medians.
Every process it starts carries a tag on its command line that only its rule selects.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path

from bench_http import free_port, wrk_once

REPO = Path(__file__).resolve().parents[1]
HZ = os.sysconf("SC_CLK_TCK")

IDLE = "import asyncio, sys\nasync def main():\n    while True:\n        await asyncio.sleep(1)\n" \
       "asyncio.run(main())\n"
# RATE callbacks a second: batches of sleep(0) steps, paced by the clock
BUSY = textwrap.dedent("""\
    import asyncio, sys, time
    RATE = float(sys.argv[1])
    async def main():
        start, done = time.monotonic(), 0
        while True:
            for _ in range(50):
                await asyncio.sleep(0)
            done += 50
            ahead = done / RATE - (time.monotonic() - start)
            if ahead > 0:
                await asyncio.sleep(ahead)
    asyncio.run(main())
    """)


class Service:
    def __init__(self, aiocopd, tag, workdir):
        self.port = free_port()
        conf = Path(workdir) / "aiocopd.conf"
        conf.write_text(f"[service]\nlog = stdout\nmetrics_listen = 127.0.0.1:{self.port}\n"
                        f'[watch "bench"]\ncmdline = {tag}\n')
        self.err = open(Path(workdir) / "service.err", "w+")
        self.proc = subprocess.Popen([aiocopd, "service", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=self.err, env=dict(os.environ, NOTIFY_SOCKET=""))
        self.wait_metric(lambda m: "aiocopd_build_info" in m, 30)

    def metrics(self):
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                          timeout=5).read().decode()
        except OSError:
            return ""

    def watched(self):
        for line in self.metrics().splitlines():
            if line.startswith('aiocopd_watched_processes{service="bench"}'):
                return int(float(line.split()[-1]))
        return 0

    def wait_metric(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.metrics()):
                return True
            time.sleep(0.1)
        raise SystemExit(f"service not ready: {Path(self.err.name).read_text()[-2000:]}")

    def cpu_seconds(self):
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / HZ

    def rss_mib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def start_targets(python, code, args, n, tag):
    return [subprocess.Popen([python, "-c", code, *args, tag], stdout=subprocess.DEVNULL)
            for _ in range(n)]


def stop_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def cpu_share(args, code, extra):
    tag = "bench-" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as d:
        targets = start_targets(args.python, code, extra, 20, tag)
        svc = Service(args.aiocopd, tag, d)
        try:
            deadline = time.monotonic() + 30
            while svc.watched() < 20 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2)
            c0, t0 = svc.cpu_seconds(), time.monotonic()
            time.sleep(args.seconds)
            share = (svc.cpu_seconds() - c0) / (time.monotonic() - t0)
            return share, svc.rss_mib(), svc.watched()
        finally:
            svc.stop()
            stop_all(targets)


def bench_latency(args):
    tag = "bench-" + uuid.uuid4().hex[:8]
    times = []
    with tempfile.TemporaryDirectory() as d:
        svc = Service(args.aiocopd, tag, d)
        try:
            for _ in range(20):
                start = time.monotonic()
                p = start_targets(args.python, IDLE, (), 1, tag)[0]
                needle = f"watching PID {p.pid} "
                while time.monotonic() - start < 10:
                    svc.err.seek(0)
                    if needle in svc.err.read():
                        break
                    time.sleep(0.005)
                times.append(time.monotonic() - start)
                stop_all([p])
        finally:
            svc.stop()
    return statistics.median(times), max(times)


def bench_aiohttp(args):
    tag = "bench-" + uuid.uuid4().hex[:8]
    rates = {"unmonitored": [], "service": []}
    for run in range(args.runs):
        for mode in ("unmonitored", "service"):
            port = free_port()
            with tempfile.TemporaryDirectory() as d:
                svc = Service(args.aiocopd, tag, d) if mode == "service" else None
                server = subprocess.Popen(["/usr/bin/python3", REPO / "tools" / "bench_http.py",
                                           str(port), tag], stdout=subprocess.PIPE, text=True)
                try:
                    assert server.stdout.readline().strip() == "ready"
                    if svc:
                        deadline = time.monotonic() + 10
                        while svc.watched() < 1 and time.monotonic() < deadline:
                            time.sleep(0.1)
                        assert svc.watched() == 1, "the server is not watched"
                    wrk_once(port, 2)           # warm-up
                    rates[mode].append(wrk_once(port, args.seconds // 2 or 5))
                finally:
                    server.terminate()      # its small file goes with it
                    server.wait()
                    if svc:
                        svc.stop()
            print(f"  run {run + 1} {mode}: {rates[mode][-1]:.0f} req/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    return med["unmonitored"], med["service"], med["service"] / med["unmonitored"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aiocopd", default=str(REPO / "build" / "aiocopd"))
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--only", default="idle,busy,latency,aiohttp")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=20)
    args = ap.parse_args()
    only = set(args.only.split(","))
    results = {}
    if "idle" in only:
        share, rss, n = cpu_share(args, IDLE, ())
        results["idle"] = {"cpu_share": share, "rss_mib": rss, "watched": n}
        print(f"idle: 20 processes ({n} watched): {share * 100:.2f}% of a core, "
              f"RSS {rss:.1f} MiB", flush=True)
    if "busy" in only:
        share, rss, n = cpu_share(args, BUSY, ("2500",))
        results["busy"] = {"cpu_share": share, "rss_mib": rss, "watched": n}
        print(f"busy: 20 processes x 2,500 callbacks/s ({n} watched): {share * 100:.2f}% of a "
              f"core, RSS {rss:.1f} MiB", flush=True)
    if "latency" in only:
        med, worst = bench_latency(args)
        results["latency"] = {"median_s": med, "max_s": worst}
        print(f"latency: exec to first probe, median {med * 1000:.0f} ms, max "
              f"{worst * 1000:.0f} ms", flush=True)
    if "aiohttp" in only:
        base, watched, ratio = bench_aiohttp(args)
        results["aiohttp"] = {"unmonitored": base, "service": watched, "ratio": ratio}
        print(f"aiohttp under wrk: {base:.0f} req/s unmonitored, {watched:.0f} watched: "
              f"{ratio:.3f}x", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
