"""How a report is attributed (SPEC section 3): reason from where the callback's time went, and
entry_point as the application's innermost frame."""
from aiocopd_e2e import frame_of

from test_scenarios import expect_reports


def test_gc_heavy_step_has_reason_gc(paired):
    """A step that only collects garbage: reason gc, not cpu_blocking."""
    target, run = paired(lambda h, py: h.watch(py, "gc_heavy.py", duration=2), parallel=1)
    reports = run.for_task("the-collector", "collector")
    expect_reports(run, reports, 2, "the-collector", task_name="the-collector")
    # the step that builds the heap (collector off) may be slow too: it has no collection
    collecting = [r for r in reports if r["gc_ms"] >= 5]
    assert len(collecting) >= 2, f"no report measured the collections:\n{run.describe()}"
    for r in collecting:
        assert 2 * r["gc_ms"] >= r["elapsed_ms"], r
        assert r["reason"] == "gc", r
        assert r["blocking_events"] == [], r


def test_blocking_inside_installed_library_points_at_application(paired):
    """The blocking call is in a module under site-packages: entry_point is the application's
    frame that called it, the trace still starts in the library."""
    target, run = paired(lambda h, py: h.watch(py, "library_blocker.py", duration=1.5))
    reports = run.for_task("the-worker", "worker")
    expect_reports(run, reports, 3, "the-worker", task_name="the-worker")
    caller = frame_of("library_blocker.py", "call-library", "worker")
    library = frame_of("vendor/site-packages/slowlib.py", "library-sleep", "fetch_blocking")
    for r in reports:
        sleeps = [e for e in r["blocking_events"] if e["category"] == "sleep"]
        assert len(sleeps) == 1, r
        assert sleeps[0]["entry_point"] == caller, sleeps[0]
        assert sleeps[0]["trace"].startswith(library + " <- " + caller), sleeps[0]


def test_small_tasks_waking_together_are_the_loops_lag(paired):
    """300 tasks of 0.2 ms each run in one iteration: a slow_iteration report naming some of
    them, and no slow callback blamed on any of them."""
    target, run = paired(lambda h, py: h.watch(py, "many_small_tasks.py", duration=2),
                         parallel=1)
    assert run.rc == 0, run.describe()
    assert run.iterations, f"no slow_iteration report:\n{run.describe()}"
    for it in run.iterations:
        assert it["callbacks"] >= 2, it
        named = [t for t in it["top"] if t["task"]]
        assert named and all(t["task"]["name"].startswith("small-") or t["task"]["name"] == "?"
                             for t in named), it
    blamed = [r for r in run.reports if r["task"] and r["task"]["coro"] == "small"]
    assert not blamed, f"a small task was reported as a slow callback:\n{run.describe()}"
