#!/usr/bin/env python3
"""What each tier of aiocopd costs the process it watches (issue 13's table), in one session.

  sudo tools/bench_tiers.py [--python /usr/bin/python3.11] [--runs 5] [--seconds 5]
                            [--only sleep0,fileio,http_json,http_file] [--tiers default,armed,all]
                            [--aiocopd build/aiocopd | --build NAME=PATH ...] [--root DIR]
                            [--clock wall|cpu] [--bpf-stats] [--json FILE]

Each round runs every workload unmonitored, with the default tier (`aiocopd -p`), armed from
the start (`aiocopd trace`) and with `--all`, one after the other, the order turned by one
each round so that a drift of the machine does not always fall on the same tier. The table
gives, per workload and tier, the ratio of the medians over the rounds to the unmonitored
median: run time for sleep0 and fileio (lower is better), requests a second for the aiohttp
service under wrk (tools/bench_http.py: server on CPU 0, wrk on CPU 1; higher is better).
--build NAME=PATH, given more than once, runs every tier with each of those aiocopd builds in
the same rounds (e.g. before=/tmp/aiocopd-before after=build/aiocopd), a column each.
It also prints aiocopd's own CPU time over each measured run (median per tier), which on a
shared host is time the host's services do not get, and the records it lost (ring buffer
full), which a report then lacks. --bpf-stats also prints, per workload
and tier, each BPF program's runs per unit of work and mean run time
(kernel.bpf_stats_enabled, on for the session and restored after).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys

import bench
from bench_http import WARMUP_S

HERE = os.path.dirname(os.path.abspath(__file__))
BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled"

# name: (what it runs, work done, unit of that work, higher is better, {tier: target})
WORKLOADS = {
    "sleep0": ("200,000 `await asyncio.sleep(0)` steps", 200_000, "step", False,
               {"default": 1.05, "armed": 1.5}),
    "fileio": ("20,000 steps that `os.stat` and read a small file", 20_000, "step", False,
               {"default": 1.05, "armed": 1.3, "all": 2.0}),
    "http_json": ("aiohttp service under `wrk`, JSON endpoint", None, "request", True,
                  {"default": 0.99, "armed": 0.97}),
    "http_file": ("the same, an endpoint that opens and reads a small file", None, "request",
                  True, {"default": 0.99, "armed": 0.95}),
}
# tier: (bench.run_once mode, extra aiocopd options, column title)
TIERS = {
    "default": ("live", [], "default tier"),
    "armed": ("trace", [], "armed (`trace`)"),
    "all": ("live", ["--all"], "`--all`"),
}


@contextlib.contextmanager
def bpf_stats_enabled(on):
    """kernel.bpf_stats_enabled on for the block, as it was after."""
    if not on:
        yield
        return
    with open(BPF_STATS) as f:
        was = f.read().strip()
    with open(BPF_STATS, "w") as f:
        f.write("1")
    try:
        yield
    finally:
        with open(BPF_STATS, "w") as f:
            f.write(was)


def rotated(items, k):
    k %= len(items)
    return items[k:] + items[:k]


def columns_of(tiers, builds):
    """[(key, tier, aiocopd, title)]: a column per tier and build, keyed "tier@build"."""
    return [(f"{t}@{name}" if name else t, t, path, f"{TIERS[t][2]}{' ' + name if name else ''}")
            for t in tiers for name, path in builds]


def run_round(args, python, kind, n, columns, k, results, stats, monitor_cpu):
    """One run of each column and of the unmonitored workload, in turned order."""
    for col in rotated([None, *columns], k):
        if col is None:
            key, value = "none", bench.run_once(python, kind, n)[0]
        else:
            key, tier, aiocopd, _ = col
            mode, extra, _ = TIERS[tier]
            value, _, _, cpu, lost = bench.run_once(python, kind, n, aiocopd, extra, mode,
                                                    stats.setdefault(key, {}) if args.bpf_stats
                                                    else None)
            monitor_cpu.setdefault(key, []).append((cpu, lost))
        results.setdefault(key, []).append(value)


def ratio_cell(med, base, target, higher_better):
    r = med / base
    miss = target is not None and (r < target if higher_better else r > target)
    return f"{r:.2f}x{' (!)' if miss else ''}"


def fmt_value(v, higher_better):
    return f"{v:.0f} req/s" if higher_better else f"{v:.3f} s"


def print_table(rows, columns):
    print("\n| workload | unmonitored | " + " | ".join(c[3] for c in columns) + " | target |")
    print("|---|---|" + "---|" * len(columns) + "---|")
    for kind, meds in rows.items():
        what, _, _, higher, targets = WORKLOADS[kind]
        cells = [ratio_cell(meds[key], meds["none"], targets.get(tier), higher)
                 for key, tier, _, _ in columns]
        sign = ">=" if higher else "<="
        target = ", ".join(f"{t} {sign} {v}x" for t, v in targets.items())
        print(f"| {what} | {fmt_value(meds['none'], higher)} | " + " | ".join(cells) +
              f" | {target} |")
    print("\n(!): misses its target. Medians, in the same order:")
    for kind, meds in rows.items():
        higher = WORKLOADS[kind][3]
        print(f"  {kind:9s} " + "  ".join(f"{t} {fmt_value(v, higher)}"
                                          for t, v in meds.items()))


def work_done(kind, n, meds_tier):
    """Steps of a run, or about the requests of a median run (its warm-up included, which the
    programs' counts are too): what BPF runs are divided by."""
    return n if WORKLOADS[kind][1] else meds_tier * (n + WARMUP_S)


def print_bpf_stats(kind, n, runs, meds, stats):
    unit = WORKLOADS[kind][2]
    for tier, progs in stats.items():
        work = work_done(kind, n, meds[tier]) * runs
        print(f"  {kind} {tier}: BPF programs per {unit} ({work:.0f} {unit}s over {runs} runs)")
        for name, (cnt, ns) in sorted(progs.items(), key=lambda kv: -kv[1][1]):
            if cnt:
                print(f"    {name:24s} {cnt / work:7.2f} runs  {ns / cnt:7.0f} ns mean  "
                      f"{ns / work:8.0f} ns per {unit}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="/usr/bin/python3.11")
    ap.add_argument("--aiocopd", default=os.path.join(HERE, "..", "build", "aiocopd"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5, help="wrk's load per aiohttp run")
    ap.add_argument("--only", default=",".join(WORKLOADS))
    ap.add_argument("--tiers", default=",".join(TIERS))
    ap.add_argument("--build", action="append", default=[], metavar="NAME=PATH",
                    help="an aiocopd build to compare, in the same rounds (repeatable)")
    ap.add_argument("--root", help="run --python through this root's dynamic loader")
    ap.add_argument("--bpf-stats", action="store_true",
                    help="also print each BPF program's runs and run time per unit of work")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="time the workloads by wall time (issue 13's measure) or by the "
                         "target's CPU time (robust to other load on the machine)")
    ap.add_argument("--json", help="also write the runs and medians to this file")
    args = ap.parse_args()
    kinds = [k for k in args.only.split(",") if k]
    tiers = [t for t in args.tiers.split(",") if t]
    unknown = [k for k in kinds if k not in WORKLOADS] + [t for t in tiers if t not in TIERS]
    if unknown:
        ap.error(f"unknown workload or tier: {', '.join(unknown)}")
    builds = [tuple(b.split("=", 1)) for b in args.build]
    if any(len(b) != 2 or not b[0] for b in builds):
        ap.error("--build takes NAME=PATH")
    builds = builds or [("", args.aiocopd)]
    columns = columns_of(tiers, builds)
    os.environ["AIOCOPD_BENCH_CLOCK"] = args.clock     # tools/bench_workload.py reads it
    python = bench.python_command(args.python, args.root)
    print(f"python {args.python}, {args.runs} rounds, {args.clock} clock, "
          f"kernel {os.uname().release}, "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    rows, doc = {}, {}
    with bpf_stats_enabled(args.bpf_stats):
        for kind in kinds:
            n = WORKLOADS[kind][1] or args.seconds
            results, stats, monitor_cpu = {}, {}, {}
            for k in range(args.runs):
                run_round(args, python, kind, n, columns, k, results, stats, monitor_cpu)
                print(f"  {kind} round {k + 1}: " + "  ".join(
                    f"{t} {v[-1]:.3f}" for t, v in results.items()), flush=True)
            rows[kind] = {t: statistics.median(v) for t, v in results.items()}
            cpu = {t: statistics.median(c for c, _ in v) for t, v in monitor_cpu.items()}
            lost = {t: statistics.median(n for _, n in v) for t, v in monitor_cpu.items()}
            print(f"  {kind} aiocopd's own CPU seconds and records lost a run (medians): " +
                  "  ".join(f"{t} {cpu[t]:.2f} s, {lost[t]:.0f} lost" for t in cpu), flush=True)
            doc[kind] = {"runs": results, "medians": rows[kind], "bpf_stats": stats,
                         "aiocopd_cpu_s": cpu, "records_lost": lost}
            if args.bpf_stats:
                print_bpf_stats(kind, n, args.runs, rows[kind], stats)
    print_table(rows, columns)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
