#!/usr/bin/env python3
"""What `aiocopd service` costs (issue 12's numbers; figures in docs/PERFORMANCE.md).

  sudo tools/bench_service.py [--aiocopd build/aiocopd] [--python /usr/bin/python3.11]
                              [--only idle,busy,latency,aiohttp,aiohttp_pair] [--runs 5]
                              [--seconds 20]
                              [--clock wall|cpu] [--pair-monitor service|live|trace|all]
                              [--pair-path /|/file]

idle     20 idle asyncio processes watched: the service's CPU (share of one core, from
         /proc/PID/stat over --seconds) and its RSS; and the whole machine's busy share and
         timer interrupts a second (/proc/stat, /proc/interrupts), over --seconds with the
         processes not yet watched and again watched: what runs in interrupts (the CPU
         samples at the timer tick) is charged to whatever task they interrupt, not the
         service.
busy     the same 20 processes running 50,000 callbacks a second between them.
latency  from a matching process's exec to its "watching PID" line (the first probe is on by
         then), over 20 processes started one after the other: median and max.
aiohttp  an aiohttp server (python3-aiohttp) on CPU 0 under wrk on CPU 1: requests a second
         unmonitored and watched by the service, alternating, --runs of each; the ratio of
         the medians (--clock cpu: requests per CPU second of the server). The server runs
         and is warm before the service starts, as on a host where the service starts or
         restarts among running services.
aiohttp_pair  two such servers on CPU 0, each under its own wrk on CPU 1 at the same time,
         before and after the service starts watching one of them: the watched one's
         requests per CPU second over the other's, against that ratio before. The machine's
         drift, which moves single runs here by 10 to 20 %, falls on both alike.
         --pair-monitor live measures `aiocopd -p` the same way, trace `aiocopd trace`
         (armed from the start), all `aiocopd -p --all`; --pair-path /file loads the
         endpoint that opens and reads a small file instead of the JSON one.
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
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from bench import aiocopd_argv, cpu_seconds
from bench_http import free_port, wrk_once

REPO = Path(__file__).resolve().parents[1]

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

    def wait_watching(self, n, timeout):
        """Until the service watches n processes, or timeout seconds: how many it watches."""
        deadline = time.monotonic() + timeout
        while self.watched() < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.watched()

    def wait_metric(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if pred(self.metrics()):
                return True
            time.sleep(0.1)
        raise SystemExit(f"service not ready: {Path(self.err.name).read_text()[-2000:]}")

    def cpu_seconds(self):
        return cpu_seconds(self.proc.pid)

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


def machine_counters():
    """The machine's busy CPU time (seconds: all but idle and iowait, from /proc/stat) and
    its local timer interrupts (the LOC line of /proc/interrupts, all CPUs)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    with open("/proc/interrupts") as f:
        loc = next((sum(int(v) for v in line.split()[1:] if v.isdigit())
                    for line in f if line.split()[:1] == ["LOC:"]), 0)
    return busy, loc


def machine_rates(seconds):
    """The machine's busy share (of one core) and timer interrupts a second over seconds."""
    b0, l0, t0 = *machine_counters(), time.monotonic()
    time.sleep(seconds)
    b1, l1, t1 = *machine_counters(), time.monotonic()
    return (b1 - b0) / (t1 - t0), (l1 - l0) / (t1 - t0)


def cpu_share(args, code, extra):
    """The service's CPU share watching 20 processes running code, its RSS, how many it
    watches; and the whole machine's busy share and timer interrupts a second, with the
    processes unwatched first and then watched (what runs in interrupts is no process's)."""
    tag = "bench-" + uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory() as d:
        targets = start_targets(args.python, code, extra, 20, tag)
        svc = None
        try:
            time.sleep(2)
            machine_before = machine_rates(args.seconds)
            svc = Service(args.aiocopd, tag, d)
            svc.wait_watching(20, 30)
            time.sleep(2)
            c0, t0 = svc.cpu_seconds(), time.monotonic()
            machine_after = machine_rates(args.seconds)
            share = (svc.cpu_seconds() - c0) / (time.monotonic() - t0)
            return share, svc.rss_mib(), svc.watched(), machine_before, machine_after
        finally:
            if svc:
                svc.stop()
            stop_all(targets)


def say_share(name, what, results, measured):
    share, rss, n, (busy0, loc0), (busy1, loc1) = measured
    results[name] = {"cpu_share": share, "rss_mib": rss, "watched": n,
                     "machine_busy_before": busy0, "machine_busy_after": busy1,
                     "timer_irqs_before": loc0, "timer_irqs_after": loc1}
    print(f"{name}: {what} ({n} watched): {share * 100:.2f}% of a core, RSS {rss:.1f} MiB; "
          f"the machine {busy0 * 100:.2f}% -> {busy1 * 100:.2f}% of a core busy, "
          f"{loc0:.0f} -> {loc1:.0f} timer interrupts/s", flush=True)


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


def slow_callbacks(svc):
    """Reports the service made: one arms its target, so a measured run must have none."""
    total = 0.0
    for line in svc.metrics().splitlines():
        if line.startswith("aiocopd_slow_callbacks_total{"):
            total += float(line.split()[-1])
    return total


def start_server(tag):
    """tools/bench_http.py on a free port, once it serves: (process, port)."""
    port = free_port()
    server = subprocess.Popen(["/usr/bin/python3", REPO / "tools" / "bench_http.py", str(port),
                               tag], stdout=subprocess.PIPE, text=True)
    if server.stdout.readline().strip() != "ready":
        server.terminate()
        server.wait()
        raise SystemExit("the aiohttp server did not start")
    return server, port


def bench_aiohttp(args):
    """The server starts and is warmed up before the service: its own start is a slow
    iteration that would arm it, and a service on a production host finds its services
    running. A watched run that reported anything measured the armed tier and says so."""
    tag = "bench-" + uuid.uuid4().hex[:8]
    rates = {"unmonitored": [], "service": []}
    for run in range(args.runs):
        for mode in ("unmonitored", "service"):
            note = ""
            with tempfile.TemporaryDirectory() as d:
                server, port = start_server(tag)
                svc = None
                try:
                    wrk_once(port, 2)           # warm-up
                    if mode == "service":
                        svc = Service(args.aiocopd, tag, d)
                        assert svc.wait_watching(1, 10) == 1, "the server is not watched"
                    cpu = cpu_seconds(server.pid)
                    seconds = args.seconds // 2 or 5
                    rate = wrk_once(port, seconds)
                    if args.clock == "cpu":     # requests per CPU second of the server
                        rate = rate * seconds / (cpu_seconds(server.pid) - cpu)
                    rates[mode].append(rate)
                    armed = slow_callbacks(svc) if svc else 0
                    if armed:
                        note = f" ({armed:.0f} slow callbacks: armed)"
                finally:
                    server.terminate()      # its small file goes with it
                    server.wait()
                    if svc:
                        svc.stop()
            unit = "req/s" if args.clock == "wall" else "req per CPU s"
            print(f"  run {run + 1} {mode}: {rates[mode][-1]:.0f} {unit}{note}", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    return med["unmonitored"], med["service"], med["service"] / med["unmonitored"]


# --pair-monitor other than the service: (bench.aiocopd_argv mode, extra options)
LIVE_MONITORS = {"live": ("live", []), "trace": ("trace", []), "all": ("live", ["--all"])}


class LiveMonitor:
    """`aiocopd -p PID` (live), `aiocopd trace -p PID` (armed from the start) or
    `aiocopd -p PID --all`, for the same measurement of each tier."""

    def __init__(self, aiocopd, pid, kind):
        mode, extra = LIVE_MONITORS[kind]
        self.argv = aiocopd_argv(aiocopd, mode, pid, extra)
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        if "attached" not in line:
            raise SystemExit(f"aiocopd did not attach: {line.strip()}")

    def stop(self):
        self.proc.terminate()
        self.proc.communicate(timeout=60)
        if self.argv[1] == "trace":
            os.unlink(self.argv[self.argv.index("-o") + 1])


def load_together(servers, seconds, path="/"):
    """wrk on each (server, port) at the same time, on path: each server's requests per CPU
    second."""
    rates, cpu0 = {}, {}

    def one(server, port):
        rates[server.pid] = wrk_once(port, seconds, path)

    for server, _ in servers:
        cpu0[server.pid] = cpu_seconds(server.pid)
    threads = [threading.Thread(target=one, args=sv) for sv in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [rates[s.pid] * seconds / (cpu_seconds(s.pid) - cpu0[s.pid]) for s, _ in servers]


def bench_aiohttp_pair(args):
    """Two identical servers share CPU 0 and are loaded at the same time (a wrk each on
    CPU 1); then the service starts and watches one of them, and they are loaded again.
    Whatever the machine does during a measurement it does to both, so the watched server's
    rate over the other's (requests per CPU second of each), against the same ratio before
    the service started, is the service's cost without the machine's drift. Which of the
    two is watched alternates."""
    tags = ["bench-" + uuid.uuid4().hex[:8], "bench-" + uuid.uuid4().hex[:8]]
    seconds = args.seconds // 2 or 5
    effects = []
    for run in range(args.runs):
        watched = run % 2
        servers, svc = [], None
        with tempfile.TemporaryDirectory() as d:
            try:
                servers = [start_server(t) for t in tags]
                load_together(servers, 2, args.pair_path)       # warm-up
                before = load_together(servers, seconds, args.pair_path)
                if args.pair_monitor != "service":
                    svc = LiveMonitor(args.aiocopd, servers[watched][0].pid, args.pair_monitor)
                else:
                    svc = Service(args.aiocopd, tags[watched], d)
                    assert svc.wait_watching(1, 10) == 1, "the server is not watched"
                after = load_together(servers, seconds, args.pair_path)
                armed = slow_callbacks(svc) if args.pair_monitor == "service" else 0
            finally:
                for server, _ in servers:
                    server.terminate()
                    server.wait()
                if svc:
                    svc.stop()
        other = 1 - watched
        effect = (after[watched] / after[other]) / (before[watched] / before[other])
        effects.append(effect)
        note = f" ({armed:.0f} slow callbacks: armed)" if armed else ""
        print(f"  run {run + 1}: before {before[watched]:.0f} and {before[other]:.0f}, watched "
              f"{after[watched]:.0f} and unwatched {after[other]:.0f} req per CPU s: "
              f"{effect:.3f}x{note}", flush=True)
    return statistics.median(effects), min(effects), max(effects)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--aiocopd", default=str(REPO / "build" / "aiocopd"))
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--only", default="idle,busy,latency,aiohttp,aiohttp_pair")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--pair-path", choices=("/", "/file"), default="/",
                    help="aiohttp_pair: the JSON endpoint, or the one that opens and reads a "
                         "small file")
    ap.add_argument("--pair-monitor", choices=("service", *LIVE_MONITORS), default="service",
                    help="aiohttp_pair: what watches one of the servers (live: aiocopd -p)")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="aiohttp: requests per second of wall time, or per CPU second of the "
                         "server (its own time, which the probes' cost is part of and other "
                         "load on the machine is not)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    results = {}
    if "idle" in only:
        say_share("idle", "20 processes", results, cpu_share(args, IDLE, ()))
    if "busy" in only:
        say_share("busy", "20 processes x 2,500 callbacks/s", results,
                  cpu_share(args, BUSY, ("2500",)))
    if "latency" in only:
        med, worst = bench_latency(args)
        results["latency"] = {"median_s": med, "max_s": worst}
        print(f"latency: exec to first probe, median {med * 1000:.0f} ms, max "
              f"{worst * 1000:.0f} ms", flush=True)
    if "aiohttp" in only:
        base, watched, ratio = bench_aiohttp(args)
        results["aiohttp"] = {"unmonitored": base, "service": watched, "ratio": ratio}
        unit = "req/s" if args.clock == "wall" else "req per CPU s"
        print(f"aiohttp under wrk: {base:.0f} {unit} unmonitored, {watched:.0f} watched: "
              f"{ratio:.3f}x", flush=True)
    if "aiohttp_pair" in only:
        med, low, high = bench_aiohttp_pair(args)
        results["aiohttp_pair"] = {"ratio": med, "min": low, "max": high}
        print(f"aiohttp side by side: the watched server at {med:.3f}x of the unwatched one "
              f"(median of {args.runs} runs, {low:.3f}x to {high:.3f}x)", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
