#!/usr/bin/env python3
"""Measure aiocopd's overhead on a target: unmonitored and monitored runs alternate in one
session and the ratio of the medians is printed, with the attach time and aiocopd's peak RSS.

  sudo tools/bench.py [--python /usr/bin/python3.11] [--runs 5] [--aiocopd build/aiocopd]
                     [--aiocopd-args '--all'] [--root DIR]

--root DIR runs --python (a path inside DIR, e.g. tools/test-root.sh's sid root and its
python3.14) on the host through DIR's own dynamic loader and libraries.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

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


def run_once(python, kind, n, aiocopd=None, extra=(), mode="live"):
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
        target.stdin.write("go\n")
        target.stdin.flush()
        elapsed = float(target.stdout.readline())
        if mon:
            with open(f"/proc/{mon.pid}/status") as f:
                rss_kb = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
        target.wait(timeout=60)
        return elapsed, attach_s, rss_kb
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
    args = ap.parse_args()
    python = python_command(args.python, args.root)
    extra = args.aiocopd_args.split()
    print(f"python {args.python}, aiocopd {args.mode} {' '.join(extra) or '(default options)'}, "
          f"{args.runs} alternating runs per mode, kernel {os.uname().release}")
    for kind, n, target_ratio in WORKLOADS:
        base, mon, attach, rss = [], [], [], []
        for _ in range(args.runs):
            base.append(run_once(python, kind, n)[0])
            e, a, r = run_once(python, kind, n, args.aiocopd, extra, args.mode)
            mon.append(e)
            attach.append(a)
            rss.append(r)
        ratio = statistics.median(mon) / statistics.median(base)
        print(f"{kind:7s} n={n:<7d} unmonitored {statistics.median(base):.3f}s  "
              f"monitored {statistics.median(mon):.3f}s  ratio {ratio:.2f}x (target {target_ratio}x)  "
              f"attach {max(attach):.2f}s max  aiocopd RSS {max(rss) / 1024:.1f} MiB max")
    return 0


if __name__ == "__main__":
    sys.exit(main())
