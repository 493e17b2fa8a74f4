"""How a report is attributed (SPEC section 3): reason from where the callback's time went, and
entry_point as the application's innermost frame."""
from aiocopd_e2e import frame_of, verdict

from test_scenarios import expect_reports


def test_gc_heavy_step_has_reason_gc(paired):
    """A step that only collects garbage: reason gc, not cpu_blocking."""
    # 3.14+ collect 200,000 cycles in about 25 ms: a threshold that every collection passes
    target, run = paired(lambda h, py: h.watch(py, "gc_heavy.py", "-t", "15", duration=2),
                         parallel=1)
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
    them, and no slow callback blamed on any of them. Every round is such an iteration, before
    the target is armed (attributed from the samples) and after (timed by BPF), so a run
    sees several; one is enough here, whatever the machine's load made of the others."""
    target, run = paired(lambda h, py: h.watch(py, "many_small_tasks.py", duration=2),
                         parallel=1)
    assert run.rc == 0, run.describe()
    assert run.iterations, f"no slow_iteration report:\n{run.describe()}"
    for it in run.iterations:
        assert it["callbacks"] >= 2, it
        named = [t for t in it["top"] if t["task"]]
        assert all(t["task"]["name"].startswith("small-") or t["task"]["name"] == "?"
                   for t in named), it
        names = [t["task"]["name"] for t in named if t["task"]["name"] != "?"]
        assert len(names) == len(set(names)), f"one task named twice: {it}"
    site = frame_of("many_small_tasks.py", "small-work", "small")
    awaits = site.rsplit(":", 2)[0]
    assert any(t["task"] and t["task"]["name"].startswith("small-") and
               t["entry_point"].startswith(awaits + ":") and t["entry_point"].endswith(":small")
               for it in run.iterations for t in it["top"]), \
        f"no slow_iteration names a small task in its own file:\n{run.iterations}"
    # (once armed, a callback bounded by Context.run that the host kept off CPU for the
    # threshold is reported, rightly: only the iteration's attribution is in question here)
    blamed = [r for r in run.reports if r["task"] and r["task"]["coro"] == "small" and
              r["attribution"] == "iteration"]
    assert not blamed, f"a small task was blamed for the iteration:\n{run.describe()}"


def test_first_report_of_fresh_target_equals_later_ones(paired):
    """The first report, attributed from the loop iteration before the target is armed, gives
    the same events, score and level as the later ones bounded by Context.run."""
    target, run = paired(lambda h, py: h.watch(py, "sleeper.py", duration=1.5))
    reports = run.for_task("the-sleeper", "sleeper")
    expect_reports(run, reports, 3, "the-sleeper", task_name="the-sleeper")
    first = [r for r in reports if r["attribution"] == "iteration"]
    later = [r for r in reports if r["attribution"] == "callback"]
    assert first and later, f"expected an unarmed report, then armed ones:\n{run.describe()}"
    for r in first:
        assert verdict(r) == verdict(later[0]), f"first: {r}\nlater: {later[0]}"


def walker_stats(run):
    """The newfstatat events of the-walker's reports, each report's in order."""
    reports = run.for_task("the-walker", "walker")
    expect_reports(run, reports, 3, "the-walker", task_name="the-walker")
    return [[e for e in r["blocking_events"] if e.get("syscall") == "newfstatat"]
            for r in reports]


def expected_walker_traces():
    """The innermost frames of each stat, in the order walker() makes them."""
    f = lambda tag, fn: frame_of("reused_frames.py", tag, fn)  # noqa: E731
    return [[f("gen-stat", "stats_forever"), f("first-next", "walker")],
            [f("helper-stat", "stat_once"), f("helper-a", "walker")],
            [f("gen-stat", "stats_forever"), f("second-next", "walker")],
            [f("helper-stat", "stat_once"), f("helper-b", "walker")],
            [f("own-stat", "walker")]]


def test_each_operation_of_a_callback_has_its_own_callers(paired):
    """Five stats of one step from five places: each trace names its own callers, and all end
    in the same frames below the step (the frames aiocopd reads once per callback)."""
    target, run = paired(lambda h, py: h.watch(py, "reused_frames.py", duration=1.5))
    armed = [stats for stats in walker_stats(run) if len(stats) == 5]
    assert len(armed) >= 2, f"no armed report has the five stats:\n{run.describe()}"
    want = expected_walker_traces()
    for stats in armed:
        bottoms = set()
        for event, top in zip(stats, want):
            frames = event["trace"].split(" <- ")
            assert frames[:len(top)] == top, event
            assert not event["trace_truncated"], event
            bottoms.add(tuple(frames[len(top):]))
        assert len(bottoms) == 1, stats
        (bottom,) = bottoms
        assert bottom[-1].endswith(":<module>"), bottom
        assert any(fr.endswith(":_run_once") for fr in bottom), bottom


def test_cut_traces_of_reused_frames_keep_the_innermost(paired):
    """With --trace-depth 4 each stat keeps its 4 innermost frames, the bottom cut like the
    rest: the frames reused below the step are cut where a whole walk would have cut them."""
    target, run = paired(lambda h, py: h.watch(py, "reused_frames.py", "--trace-depth", "4",
                                               duration=1.5))
    armed = [stats for stats in walker_stats(run) if len(stats) == 5]
    assert len(armed) >= 2, f"no armed report has the five stats:\n{run.describe()}"
    for stats in armed:
        for event, top in zip(stats, expected_walker_traces()):
            frames = event["trace"].split(" <- ")
            assert len(frames) == 4 and event["trace_truncated"], event
            assert frames[:len(top)] == top, event
            assert frames[len(top)].endswith(":_run"), event


def test_tasks_at_the_addresses_of_freed_ones_keep_their_own_names(paired):
    """Tasks that follow each other reuse the freed Task's memory: every step's report names
    the Task whose name its stat carries, for both steps of each Task."""
    target, run = paired(lambda h, py: h.watch(py, "renamed_tasks.py", "--all",
                                               target_env={"E2E_PERIOD": "0.02"}, duration=1.5))
    checked = {"first-stat": 0, "second-stat": 0}
    for r in run.reports:
        if not r["task"] or r["task"]["coro"] != "worker":
            continue
        for e in r["blocking_events"]:
            if not e["event"].startswith("newfstatat(/nonexistent/"):
                continue
            assert r["task"]["name"] == e["event"][len("newfstatat(/nonexistent/"):-1], r
            for tag in checked:
                if " <- " + frame_of("renamed_tasks.py", tag, "worker") + " <- " in e["trace"]:
                    checked[tag] += 1
    assert min(checked.values()) >= 20, f"too few steps seen {checked}:\n{run.describe()}"
