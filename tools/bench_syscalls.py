#!/usr/bin/env python3
"""What aiocopd's system-wide syscall hooks cost processes it does NOT watch, and how long
its attach and its detach take.

For each monitor command (default: build/aiocopd -p PID) it starts an asyncio target for it
to watch, waits for the monitor's "attached" line (the attach time), runs the
tools/syscall_cost.c loop in this unwatched process, stops the monitor with SIGINT and
times until the monitor has exited and until none of its BPF programs is loaded any more
(the detach time). Rounds alternate between the monitors and "none", and the figures are
medians over rounds. Rounds during which a BPF program this run did not load was attached
to a syscall or scheduler hook (another tracer's, e.g. another aiocopd) are counted apart.

  cc -O2 -o build/syscall_cost tools/syscall_cost.c
  sudo /usr/bin/python3 tools/bench_syscalls.py --rounds 7 --wait-quiet 120 \\
      --monitor before=/tmp/aiocopd-before --monitor after=build/aiocopd \\
      --monitor raw="build/hookcost raw"
"""
import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time

from bpf_fdinfo import ids_held_by

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# BPF program types that run on syscall or scheduler tracepoints, i.e. on every process
HOOK_TYPES = {"tracepoint", "raw_tracepoint", "tracing"}
# a syscall aiocopd does not trace, and one it does (a one-byte read of /dev/zero)
SYSCALLS = ("getppid", "read")


def bpf_programs():
    out = subprocess.run(["bpftool", "-j", "prog", "list"], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    return {p["id"]: p for p in json.loads(out or "[]")}


def foreign_hooks(mine):
    return sorted(p.get("name", "?") for i, p in bpf_programs().items()
                  if p.get("type") in HOOK_TYPES and i not in mine)


def wait_quiet(mine, seconds):
    """Waits up to seconds for a moment when no other tracer's hook is loaded."""
    deadline = time.monotonic() + seconds
    while foreign_hooks(mine) and time.monotonic() < deadline:
        time.sleep(0.5)


def syscall_cost(binary, calls, runs, what):
    out = subprocess.run([binary, str(calls), str(runs), what], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1].split()[1])


def start_monitor(argv, timeout=30):
    t0 = time.monotonic()
    mon = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = mon.stderr.readline()
    if "attached" not in line:
        mon.kill()
        raise RuntimeError(f"{argv[0]} did not attach: {line.strip()}")
    return mon, time.monotonic() - t0


def stop_monitor(mon, ids, timeout=60):
    """Seconds from SIGINT until the monitor exited, and until its programs are all gone."""
    t0 = time.monotonic()
    mon.send_signal(signal.SIGINT)
    mon.wait(timeout=timeout)
    exited = time.monotonic() - t0
    while ids & set(bpf_programs()):
        if time.monotonic() - t0 > timeout:
            return exited, float("inf")
        time.sleep(0.01)
    return exited, time.monotonic() - t0


def one_round(name, argv_template, target_pid, args, results):
    mon, mine = None, set()
    if argv_template:
        argv = [a.replace("{pid}", str(target_pid)) for a in argv_template]
        mon, attach = start_monitor(argv)
        results[name]["attach"].append(attach)
        time.sleep(0.5)         # let the target's loop thread be seen
        mine = ids_held_by(mon.pid)
    ns = {}
    for what in SYSCALLS:
        wait_quiet(mine, args.wait_quiet)
        foreign = foreign_hooks(mine)
        ns[what] = syscall_cost(args.cost_binary, args.calls, args.runs, what)
        foreign = foreign or foreign_hooks(mine)
        results[name][what]["quiet" if not foreign else "busy"].append(ns[what])
    if mon:
        exited, gone = stop_monitor(mon, mine)
        results[name]["exit"].append(exited)
        results[name]["detach"].append(gone)
    return ns, foreign


def med(xs, fmt):
    return fmt.format(statistics.median(xs)) + f" (n={len(xs)})" if xs else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--monitor", action="append", default=[],
                    help="NAME=COMMAND, run as COMMAND -p PID: an aiocopd binary, or a "
                    "stand-in hook such as 'build/hookcost raw'")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=300000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="before each measurement, wait this long at most for other "
                    "tracers' hooks to go")
    ap.add_argument("--cost-binary", default=os.path.join(ROOT, "build", "syscall_cost"))
    args = ap.parse_args()
    monitors = [("none", None)]
    for m in args.monitor or [f"current={os.path.join(ROOT, 'build', 'aiocopd')}"]:
        name, _, command = m.partition("=")
        monitors.append((name, shlex.split(command) + ["-p", "{pid}"]))
    results = {n: {"attach": [], "exit": [], "detach": [],
                   **{w: {"quiet": [], "busy": []} for w in SYSCALLS}} for n, _ in monitors}
    target = subprocess.Popen([args.python, os.path.join(ROOT, "examples", "demo_app.py"),
                               "3600"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.5)
        for r in range(args.rounds):
            for name, argv in monitors:
                ns, foreign = one_round(name, argv, target.pid, args, results)
                print(f"round {r + 1} {name}: "
                      + ", ".join(f"{w} {v:.1f} ns" for w, v in ns.items())
                      + (f"  (other hooks: {len(foreign)})" if foreign else ""), flush=True)
    finally:
        target.terminate()
        target.wait()
    print("\nns per call, medians over rounds; quiet: no other tracer's hook was loaded")
    print(f"{'monitor':14}" + "".join(f"{w + ' quiet':16}{w + ' busy':16}" for w in SYSCALLS)
          + f"{'attach s':14}{'exit s':14}detach s")
    for name, _ in monitors:
        res = results[name]
        print(f"{name:14}" + "".join(f"{med(res[w]['quiet'], '{:.1f}'):16}"
                                     f"{med(res[w]['busy'], '{:.1f}'):16}" for w in SYSCALLS)
              + f"{med(res['attach'], '{:.3f}'):14}{med(res['exit'], '{:.3f}'):14}"
              f"{med(res['detach'], '{:.3f}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
