"""SPEC section 4 against real programs: only what really blocked counts, waits are named by
what they waited for, a long operation and a stall are serious whatever their kind.

Every JSON line is checked against SPEC sections 3-4 (aiocopd_e2e.check_report) before the
assertions below.
"""
import re

from aiocopd_e2e import frame_of
from test_scenarios import armed, armed_reports, expect_reports


def test_nonblocking_connect_is_no_report(paired):
    """asyncio's own connect returns EINPROGRESS and the loop waits for it: even with --all,
    where every callback that performed a blocking operation is reported, nothing is."""
    target, run = paired(lambda h, py: h.watch(py, "nonblocking_connect.py", "--all",
                                                duration=1.5))
    assert run.rc == 0, run.describe()
    for r in run.reports:
        for e in r["blocking_events"]:
            assert "connect" not in e["event"], f"asyncio's connect counted: {r}"
    assert not run.for_task("the-connector", "client"), \
        f"a non-blocking client was reported:\n{run.describe()}"


def test_urllib_wait_is_one_network_wait_with_its_peer(paired):
    """urlopen of a numeric address resolves nothing; its 60 ms wait for the answer is one
    network event naming the server, high because it alone took the threshold."""
    target, run = paired(lambda h, py: h.watch(py, "urllib_local.py", duration=1.5))
    reports = run.for_task("the-fetcher", "fetcher")
    expect_reports(run, reports, 3, "the-fetcher", task_name="the-fetcher")
    site = frame_of("urllib_local.py", "urlopen", "fetcher")
    for r in reports:
        assert r["severity_level"] == "high", r
        assert not [e for e in r["blocking_events"] if e["category"] == "dns"], \
            f"a lookup of 127.0.0.1 counted: {r}"
        waits = [e for e in r["blocking_events"] if e["duration_ms"] >= 40]
        assert len(waits) == 1, f"expected one wait of >= 40 ms: {r}"
        e = waits[0]
        assert e["category"] == "network" and e["severity"] == 50, e
        assert re.search(r"127\.0\.0\.1:\d+", e["event"]), f"the peer is not named: {e}"
        assert e["entry_point"] == site, e


def test_sync_database_client_wait_is_a_database_wait(paired):
    """A sync client's 60 ms wait for its local database server's answer (a server thread on
    a database server's port, speaking RESP): one database event naming the server, high
    because it alone took the threshold, at the client's line."""
    target, run = paired(lambda h, py: h.watch(py, "database_client.py", duration=1.5))
    [port] = [int(l.split()[-1]) for l in target.stdout if l.startswith("database port ")]
    reports = run.for_task("the-worker", "worker")
    expect_reports(run, reports, 3, "the-worker", task_name="the-worker")
    site = frame_of("database_client.py", "recv", "worker")
    for r in reports:
        assert r["severity_level"] == "high", r
        waits = [e for e in r["blocking_events"] if e["duration_ms"] >= 40]
        assert len(waits) == 1, f"expected one wait of >= 40 ms: {r}"
        e = waits[0]
        assert e["category"] == "database" and e["severity"] == 50, e
        assert f"127.0.0.1:{port}" in e["event"], f"the server is not named: {e}"
        assert e["entry_point"] == site, e
        # nothing of the exchange is a mere network event: the port says database
        assert not [e for e in r["blocking_events"] if e["category"] == "network"], r


def test_thread_lock_wait_is_a_lock_wait(paired):
    """A threading.Lock another thread holds for 60 ms: a futex wait, category lock."""
    target, run = paired(lambda h, py: h.watch(py, "lock_wait.py", duration=1.5))
    reports = [r for r in run.for_task("the-taker", "taker") if r["exceeded_threshold"]]
    expect_reports(run, reports, 3, "the-taker", task_name="the-taker")
    site = frame_of("lock_wait.py", "acquire", "taker")
    for r in reports:
        locks = [e for e in r["blocking_events"] if e["category"] == "lock"]
        assert len(locks) == 1, f"expected one lock wait: {r}"
        e = locks[0]
        assert e["event"] == "futex(threading lock)" and e["syscall"] == "futex", e
        assert e["duration_ms"] >= 40 and e["severity"] == 50, e
        assert e["entry_point"] == site, e
        assert r["severity_level"] == "high", r


def test_cpu_stall_levels(paired):
    """Nothing blocks, yet a 100 ms step holds the loop over 2x the 30 ms threshold (at least
    medium) and a 150 ms one over 4x (high)."""
    target, run = paired(lambda h, py: h.watch(py, "cpu_stall.py", duration=2), parallel=1)
    short = run.for_task("stall-100", "short_stall")
    long = run.for_task("stall-150", "long_stall")
    expect_reports(run, short, 3, "stall-100", task_name="stall-100")
    expect_reports(run, long, 3, "stall-150", task_name="stall-150")
    for r in short + long:
        assert r["severity_score"] == 0 and r["reason"] != "io_blocking", r
    # a report attributed from a whole iteration that both steps shared estimates each one's
    # time from its CPU samples; once armed, each is bounded exactly
    exact = [r for r in short + long if armed(r)]
    for r in short:
        assert r not in exact or r["elapsed_ms"] >= 95, r
        assert r["severity_level"] in ("medium", "high"), r
    for r in long:
        assert r not in exact or r["elapsed_ms"] >= 145, r
        assert r not in exact or r["severity_level"] == "high", r
    armed_reports(run, short + long, 2, "the stalls")
