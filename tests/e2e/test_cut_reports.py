"""Reports that cannot show everything say so (issue 9 items 2 and 6): a stack deeper than
--trace-depth is reported with its innermost frames and marked cut, and a callback with more
operations than aiocopd itemises says how many it left out and how long they took."""
import re

import pytest

from aiocopd_e2e import frame_of


def armed(report):
    return report.get("attribution") == "callback"


@pytest.mark.parametrize("tier", ["default", "all"])
def test_deep_stack_is_reported_cut(paired, tier):
    def scenario(harness, python):
        options = ("--all",) if tier == "all" else ()
        target, run = harness.watch(python, "deep_stack.py", *options, duration=2)
        assert run.rc == 0, run.describe()
        site = frame_of("deep_stack.py", "sleep", "descend")
        reports = [r for r in run.reports
                   if any(e["entry_point"] == site for e in r["blocking_events"])]
        assert len(reports) >= 3, f"the deep sleep is not reported:\n{run.describe()}"
        for r in reports:
            assert r["elapsed_ms"] >= 50 and r["exceeded_threshold"], r
            e = next(e for e in r["blocking_events"] if e["entry_point"] == site)
            # (named from the syscall's length when its timeout could not be read: 0.05x)
            assert e["category"] == "sleep", e
            assert re.fullmatch(r"time\.sleep\(0\.05\d?\)", e["event"]), e
            frames = e["trace"].split(" <- ")
            assert frames[0] == site and len(frames) == run.trace_depth, e
            assert all(f.endswith(":descend") for f in frames[:run.trace_depth - 2]), e
            assert e["trace_truncated"] is True, e
        named = [r for r in reports if armed(r)]
        assert named, f"no report bounded by its callback:\n{run.describe()}"
        for r in named:
            assert r["task"] == {"name": "deep-task", "coro": "deep"}, r

    paired(scenario)


def test_operations_over_the_limit_are_counted(paired):
    def scenario(harness, python):
        calls = 3000
        target, run = harness.watch(python, "many_calls.py", "--all", duration=2,
                                    target_env={"E2E_CALLS": str(calls)})
        assert run.rc == 0, run.describe()
        site = frame_of("many_calls.py", "stat", "stat_storm")
        reports = run.for_task("stat-storm", "stat_storm")
        assert len(reports) >= 3, run.describe()
        for r in reports:
            stats = [e for e in r["blocking_events"] if e["entry_point"] == site]
            assert stats and len(stats) < calls, r
            # every call is itemised or counted: BPF's and aiocopd's limits leave the rest
            assert r["omitted_operations"] > 0, r
            total = len(stats) + r["omitted_operations"]
            assert calls * 0.97 <= total <= calls + 20, \
                f"{len(stats)} itemised + {r['omitted_operations']} omitted, {calls} made: {r}"
            itemised_ms = sum(e["duration_ms"] for e in r["blocking_events"])
            assert 0 < r["omitted_ms"] <= r["elapsed_ms"] - itemised_ms + 0.01, r

    paired(scenario)
