#!/usr/bin/env python3
"""What `aiocopd exec` costs per process, and whether its state lives as long as its processes.

  sudo tools/bench_exec.py [--python /usr/bin/python3.11] [--aiocopd build/aiocopd]
                           [--loop 200] [--runs 3] [--soak 1500]

1. start cost: a shell loop of --loop trivial asyncio programs (and the same started by a
   Python with subprocess.run), unmonitored and under
   `aiocopd exec`, alternating --runs times; prints the ratio of the medians, and how long each
   process was held between its exec and its release (from `aiocopd exec -vv`), median and p90.
2. memory and maps: `aiocopd exec` over --soak trivial programs; prints aiocopd's RSS once the
   first 50 have run and at the end, and the entry count of each of its BPF maps before the
   first program and after the last one exited.
3. exit: aiocopd -p on a running program, SIGINT once attached: how long until it exits, and how
   long the next aiocopd takes to attach.
Only processes started here are signalled, by their PID.
"""
import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bpf_fdinfo import hash_map_entries

HERE = os.path.dirname(os.path.abspath(__file__))
SMALL = """import asyncio, sys
async def main():
    await asyncio.sleep(0)
asyncio.run(main())
print(sys.argv[1], flush=True)
"""
SPAWNER = """import subprocess, sys
for i in range(int(sys.argv[1])):
    subprocess.run([sys.executable, sys.argv[2], str(i)], stdout=subprocess.DEVNULL, check=True)
"""
HELD_RE = re.compile(r"released ([0-9.]+) ms after its exec")


def shell_loop(python, script, count, pause_s=0.0):
    """A command running count trivial programs one after another, each printing its index."""
    loop = f'for i in $(seq {count}); do {python} {script} $i || exit 1; done'
    if pause_s:
        loop = f"sleep {pause_s}; {loop}; sleep {pause_s}"
    return ["sh", "-c", loop]


def timed(argv, stderr=subprocess.DEVNULL):
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=stderr, text=True, check=True)
    return time.monotonic() - t0, p.stderr or ""


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def start_cost(args, script, cmd=None, what="programs from a shell loop"):
    base, mon, held = [], [], []
    cmd = cmd or shell_loop(args.python, script, args.loop)
    for _ in range(args.runs):
        base.append(timed(cmd)[0])
        t, err = timed([args.aiocopd, "exec", "-vv", "--", *cmd], stderr=subprocess.PIPE)
        mon.append(t)
        held += [float(m) for m in HELD_RE.findall(err)]
    ratio = statistics.median(mon) / statistics.median(base)
    print(f"start cost: {args.loop} {what}, unmonitored {statistics.median(base):.2f}s, "
          f"under exec {statistics.median(mon):.2f}s, ratio {ratio:.2f}x (target <= 1.5x)")
    if held:
        print(f"  held between exec and release: median {statistics.median(held):.1f} ms, "
              f"p90 {percentile(held, 0.9):.1f} ms, max {max(held):.1f} ms over {len(held)} "
              f"processes (target: median <= 30 ms)")
    else:
        print("  held between exec and release: not reported by this aiocopd")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def soak(args, script):
    cmd = shell_loop(args.python, script, args.soak, pause_s=2)
    mon = subprocess.Popen([args.aiocopd, "exec", "--", *cmd], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(1)
        before = hash_map_entries(mon.pid)
        early = None
        for line in mon.stdout:
            if line.strip() == "50":
                early = rss_kib(mon.pid)
            if line.strip() == str(args.soak):
                break
        time.sleep(1)
        late, after = rss_kib(mon.pid), hash_map_entries(mon.pid)
        mon.wait(timeout=60)
    finally:
        if mon.poll() is None:
            mon.kill()
            mon.wait()
    print(f"memory: {args.soak} programs under exec: aiocopd RSS {early / 1024:.1f} MiB after 50, "
          f"{late / 1024:.1f} MiB after all, growth {(late - early) / 1024:.2f} MiB "
          f"(target < 8 MiB in all)")
    changed = {k: (before.get(k), v) for k, v in after.items() if before.get(k) != v}
    print(f"  BPF map entries before/after: {before}"
          + (f"; changed: {changed}" if changed else "; all back to their baseline"))


def exit_time(args):
    target = subprocess.Popen([args.python, os.path.join(HERE, "..", "examples", "demo_app.py"),
                               "60"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1)
        times = []
        for i in range(2):
            t0 = time.monotonic()
            mon = subprocess.Popen([args.aiocopd, "-p", str(target.pid)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            while "attached" not in mon.stderr.readline():
                if mon.poll() is not None:
                    raise RuntimeError("aiocopd did not attach")
            attach = time.monotonic() - t0
            t0 = time.monotonic()
            mon.send_signal(signal.SIGINT)
            mon.wait(timeout=30)
            times.append((attach, time.monotonic() - t0))
        lingering = subprocess.run(["ps", "-eo", "stat=,comm="], capture_output=True,
                                   text=True).stdout.count("aiocopd")
    finally:
        target.kill()
        target.wait()
    print(f"exit: attach {times[0][0]:.2f}s, exit after SIGINT {times[0][1]:.2f}s; the next "
          f"aiocopd attached in {times[1][0]:.2f}s and exited in {times[1][1]:.2f}s; "
          f"aiocopd processes left: {lingering} (target: exit <= 0.5 s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--aiocopd", default=os.path.join(HERE, "..", "build", "aiocopd"))
    ap.add_argument("--loop", type=int, default=200, help="programs per start-cost run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--soak", type=int, default=1500, help="programs in the memory run")
    ap.add_argument("--skip", default="", help="comma-separated: start,spawn,soak,exit")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    print(f"python {args.python}, kernel {os.uname().release}")
    with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="aiocopd-small-") as f:
        f.write(SMALL)
        f.flush()
        if "start" not in skip:
            start_cost(args, f.name)
        if "spawn" not in skip:
            with tempfile.NamedTemporaryFile("w", suffix=".py", prefix="aiocopd-spawner-") as sp:
                sp.write(SPAWNER)
                sp.flush()
                start_cost(args, f.name, [args.python, sp.name, str(args.loop), f.name],
                           "programs started by a Python with subprocess.run")
        if "soak" not in skip:
            soak(args, f.name)
    if "exit" not in skip:
        exit_time(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
