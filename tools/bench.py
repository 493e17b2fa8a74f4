#!/usr/bin/env python3
"""Measure aiocopd's overhead on a target: unmonitored and monitored runs alternate in one
session and the ratio of the medians is printed, with the attach time and aiocopd's peak RSS.

  sudo tools/bench.py [--python /usr/bin/python3.11] [--runs 5] [--aiocopd build/aiocopd]
                     [--aiocopd-args '--all'] [--root DIR] [--bpf-stats]

--root DIR runs --python (a path inside DIR, e.g. tools/test-root.sh's sid root and its
python3.14) on the host through DIR's own dynamic loader and libraries.

--bpf-stats also prints, per BPF program of aiocopd, how often it ran during the monitored
workloads and its mean run time (kernel.bpf_stats_enabled, on for the session and restored
after): the programs' own cost, which a busy machine's noise hides in the ratios.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from bpf_fdinfo import ids_held_by

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = [("sleep0", 200_000, 1.3), ("fileio", 20_000, 1.15)]


def aiocopd_argv(aiocopd, mode, pid, extra):
    if mode == "trace":
        # a trace as long as the run; SIGTERM at the end writes the document
        return [aiocopd, "trace", "-p", str(pid), "-d", "3600", "-o",
                f"/tmp/aiocopd-bench-{pid}.json", *extra]
    return [aiocopd, "-p", str(pid), *extra]


def python_command(python, root):
    """(argv prefix ending in the interpreter, environment) that run python."""
    if not root:
        return [python], None
    libs = f"{root}/lib/x86_64-linux-gnu:{root}/usr/lib/x86_64-linux-gnu"
    env = dict(os.environ, PYTHONHOME=f"{root}/usr")
    return [f"{root}/lib64/ld-linux-x86-64.so.2", "--library-path", libs, python], env


def prog_stats(pid):
    """{program name: [runs, run time in ns]} of the BPF programs process pid holds."""
    stats = {}
    for prog_id in ids_held_by(pid):
        out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                             capture_output=True, text=True).stdout
        info = json.loads(out or "{}")
        if "name" in info:
            total = stats.setdefault(info["name"], [0, 0])
            total[0] += info.get("run_cnt", 0)
            total[1] += info.get("run_time_ns", 0)
    return stats


def stats_since(before, after):
    return {name: [a[0] - before.get(name, [0, 0])[0], a[1] - before.get(name, [0, 0])[1]]
            for name, a in after.items()}


def cpu_seconds(pid):
    """User and system CPU time process pid has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def monitor_losses(mon):
    """Stops the monitor: the records it said it lost (ring buffer full) at its exit."""
    mon.terminate()
    _, err = mon.communicate(timeout=30)
    found = re.search(r"(\d+) records lost", err)
    return int(found.group(1)) if found else 0


def run_once(python, kind, n, aiocopd=None, extra=(), mode="live", bpf_stats=None):
    argv, env = python
    target = subprocess.Popen([*argv, os.path.join(HERE, "bench_workload.py"), kind, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    mon, attach_s, rss_kb = None, None, None
    try:
        assert target.stdout.readline().strip() == "ready"
        if aiocopd:
            t0 = time.monotonic()
            mon = subprocess.Popen(aiocopd_argv(aiocopd, mode, target.pid, extra),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            line = mon.stderr.readline()
            if "attached" not in line:
                raise RuntimeError(f"aiocopd did not attach: {line.strip()}")
            attach_s = time.monotonic() - t0
        before = prog_stats(mon.pid) if mon and bpf_stats is not None else None
        mon_cpu = cpu_seconds(mon.pid) if mon else None
        target.stdin.write("go\n")
        target.stdin.flush()
        elapsed = float(target.stdout.readline())
        if mon:
            mon_cpu = cpu_seconds(mon.pid) - mon_cpu
        if before is not None:
            for name, (runs, ns) in stats_since(before, prog_stats(mon.pid)).items():
                total = bpf_stats.setdefault(name, [0, 0])
                total[0] += runs
                total[1] += ns
        if mon:
            with open(f"/proc/{mon.pid}/status") as f:
                rss_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        target.stdin.close()        # the workload exits once measured
        target.wait(timeout=60)
        lost = monitor_losses(mon) if mon else None
        return elapsed, attach_s, rss_kb, mon_cpu, lost
    finally:
        if mon:
            mon.terminate()
            mon.wait(timeout=10)
            if mode == "trace":
                try:
                    os.unlink(f"/tmp/aiocopd-bench-{target.pid}.json")
                except FileNotFoundError:
                    pass
        if target.poll() is None:
            target.kill()
            target.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--aiocopd", default=os.path.join(HERE, "..", "build", "aiocopd"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--aiocopd-args", default="",
                    help="extra aiocopd options, e.g. '--all' to measure the armed tier")
    ap.add_argument("--mode", choices=("live", "trace"), default="live",
                    help="watch with `aiocopd -p` (live) or `aiocopd trace`")
    ap.add_argument("--root", help="run --python through this root's dynamic loader")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="also print each BPF program's runs and mean run time")
    args = ap.parse_args()
    if args.bpf_stats:
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            was = f.read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        try:
            return measure(args)
        finally:
            with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
                f.write(was)
    return measure(args)


def print_bpf_stats(stats):
    for name, (runs, ns) in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        if runs:
            print(f"    {name:24s} {runs:10d} runs  {ns / runs:8.0f} ns mean")


def measure(args):
    python = python_command(args.python, args.root)
    extra = args.aiocopd_args.split()
    print(f"python {args.python}, aiocopd {args.mode} {' '.join(extra) or '(default options)'}, "
          f"{args.runs} alternating runs per mode, kernel {os.uname().release}")
    for kind, n, target_ratio in WORKLOADS:
        base, mon, attach, rss = [], [], [], []
        stats = {} if args.bpf_stats else None
        for _ in range(args.runs):
            base.append(run_once(python, kind, n)[0])
            e, a, r, _, _ = run_once(python, kind, n, args.aiocopd, extra, args.mode, stats)
            mon.append(e)
            attach.append(a)
            rss.append(r)
        ratio = statistics.median(mon) / statistics.median(base)
        print(f"{kind:7s} n={n:<7d} unmonitored {statistics.median(base):.3f}s  "
              f"monitored {statistics.median(mon):.3f}s  ratio {ratio:.2f}x (target {target_ratio}x)  "
              f"attach {max(attach):.2f}s max  aiocopd RSS {max(rss) / 1024:.1f} MiB max")
        if stats:
            print_bpf_stats(stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
