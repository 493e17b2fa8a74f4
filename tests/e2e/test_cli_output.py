"""SPEC section 2 around the reports: several -p, a closed stdout, a wrapper's pid, the text
stack as deep as --trace-depth, and exec's exit status and summary with a failing pytest suite.
What is the command line's and not the interpreter's runs under Debian's CPython only."""
import json
import re
import shutil
import subprocess
import time

import pytest

from aiocopd_e2e import AIOCOPD, ATTACH_TIMEOUT, PROGRAMS, Interpreter, frame_of, marker_line

DEBIAN = Interpreter("debian", "/usr/bin/python3.11")


def wait_attached(p, count=1):
    for _ in range(count):
        if p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT) is None:
            pytest.fail(f"aiocopd did not attach:\n{p.describe()}", pytrace=False)


def test_two_pids_are_both_watched(harness):
    """`-p A -p B,A`: both targets are watched (A named twice is watched once), each one's
    reports carry its pid, and the monitor ends with status 0."""
    a = harness.target(DEBIAN, "sleeper.py")
    b = harness.target(DEBIAN, "sleeper.py")
    p = harness.aiocopd("-p", a.pid, "-p", f"{b.pid},{a.pid}", "--json", "-d", "3")
    rc = p.wait(timeout=60)
    assert rc == 0, p.describe()
    attached = [l for l in p.stderr if "attached" in l]
    assert len(attached) == 2, p.stderr
    assert any(f"PID {a.pid} " in l for l in attached) and any(f"PID {b.pid} " in l
                                                             for l in attached), attached
    pids = {json.loads(l)["pid"] for l in p.stdout if l.startswith("{")}
    assert pids == {a.pid, b.pid}, p.describe()


def test_closed_stdout_ends_at_once(harness):
    """`aiocopd -p PID | head -1`: once the reader is gone aiocopd ends by itself, status 0,
    without waiting for another report or for its duration."""
    target = harness.target(DEBIAN, "sleeper.py")
    p = subprocess.Popen([AIOCOPD, "-p", str(target.pid), "-d", "60"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + ATTACH_TIMEOUT
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line or b"attached" in line:
                break
        assert p.stdout.readline().startswith(b"SLOW TASK DETECTED"), "no text report"
        p.stdout.close()
        closed = time.monotonic()
        rc = p.wait(timeout=30)
        took = time.monotonic() - closed
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0
    assert took < 10, f"aiocopd took {took:.1f}s to end after its stdout was closed"


def test_wrapper_shell_names_its_python_child(harness):
    """The pid of `sh -c 'python app.py; ...'` is not a CPython: the one error line says so
    and names the CPython child to watch instead."""
    shell = harness.spawn(["/bin/sh", "-c", f"{DEBIAN.path} -u {PROGRAMS / 'sleeper.py'}; true"])
    assert shell.wait_line("out", lambda l: l == "ready", 15), shell.describe()
    child = next(int(c) for c in open(f"/proc/{shell.pid}/task/{shell.pid}/children").read()
                 .split())
    p = harness.aiocopd("-p", shell.pid, "--json", "-d", "1")
    rc = p.wait(timeout=30)
    assert rc == 1, p.describe()
    [line] = p.stderr
    assert line.startswith(f"aiocopd: PID {shell.pid} (sh) is not a CPython process"), line
    assert f"its CPython child: PID {child} (python3" in line, line


def test_text_stack_is_as_deep_as_trace_depth(paired):
    """Text output shows every frame --trace-depth keeps (here 8 of deep_stack's 21), not a
    fixed four, and says the stack went on."""
    def scenario(h, py):
        target = h.target(py, "deep_stack.py")
        p = h.aiocopd("-p", target.pid, "--trace-depth", "8", "-d", "2")
        return p, p.wait(timeout=60), target.pid

    p, rc, pid = paired(scenario)
    assert rc == 0, p.describe()
    site = frame_of("deep_stack.py", "sleep", "descend").rsplit("/", 1)[1]
    stacks = [l.strip() for l in p.stdout if l.startswith("      ") and site in l]
    assert stacks, p.describe()
    for s in stacks:
        assert s.endswith("  [stack cut: deeper than shown]"), s
        frames = s[:-len("  [stack cut: deeper than shown]")].split(" <- ")
        assert len(frames) == 8 and frames[0] == site, s
        assert all(re.fullmatch(r"deep_stack\.py:\d+:descend", f) for f in frames), s
    # and the end of the run sums up the worst entry point
    summary = [l for l in p.stderr if l.startswith(f"aiocopd: summary of PID {pid}: slow: ")]
    assert len(summary) == 1, p.stderr


def test_exec_failing_suite_keeps_its_status(harness, tmp_path):
    """`aiocopd exec --fail-on high -- python -m pytest` on a suite with a failing test and a
    blocking one: pytest's own 1 is the exit status, the summary names the blocker, and the
    reports come after pytest's output, not inside it."""
    if subprocess.run([DEBIAN.path, "-c", "import pytest"]).returncode:
        pytest.fail(f"{DEBIAN.path} has no pytest (python3-pytest)", pytrace=False)
    suite = tmp_path / "suite_blocking.py"
    shutil.copy(PROGRAMS / "suite_blocking.py", suite)
    p = harness.aiocopd("exec", "--fail-on", "high", "--", DEBIAN.path, "-m", "pytest", "-q",
                        "-p", "no:cacheprovider", "--noconftest", "--rootdir", tmp_path, suite)
    rc = p.wait(timeout=120)
    assert rc == 1, p.describe()
    assert any("1 failed, 1 passed" in l for l in p.stdout), p.describe()
    site = f"{suite}:{marker_line('suite_blocking.py', 'block')}:blocker"
    [verdict] = [l for l in p.stderr if "slow callback(s) at or above 'high'" in l]
    assert "exit status 1 (the command's own: it failed); the worst: " in verdict, verdict
    assert f"task 'the-blocker' coro blocker at {site} (PID " in verdict, verdict
    # held until pytest ended: every report line arrived after pytest's last line
    out_times = [t for t, _ in p._lines["out"]]
    report_times = [t for t, raw in p._lines["err"] if raw.startswith(b"SLOW TASK")]
    assert report_times and min(report_times) >= max(out_times), p.describe()


@pytest.mark.parametrize("argv", [["--bogus"], ["-x"], ["exec", "--bogus", "--", "true"],
                                  ["trace", "--bogus"], ["trace", "-p", "1,2", "-d", "1",
                                                         "-o", "/dev/null"]])
def test_usage_errors_name_the_program(harness, argv):
    """A usage error is status 2 and starts with the program's name, never the path it was
    run by (build/aiocopd); trace says it takes one -p rather than drop the others."""
    p = harness.aiocopd(*argv)
    assert p.wait(timeout=30) == 2, p.describe()
    assert p.stderr and p.stderr[0].startswith("aiocopd: "), p.stderr
    assert p.stderr[-1].startswith("Try 'aiocopd"), p.stderr
    if "1,2" in argv:
        assert "one -p PID per trace document" in p.stderr[0], p.stderr


@pytest.mark.parametrize("report_now", [False, True])
def test_exec_reports_held_or_now(harness, report_now):
    """exec holds its reports until CMD has exited (CMD's output stays whole); with
    --report-now they come while CMD runs, before its last line."""
    options = ["--report-now"] if report_now else []
    p = harness.aiocopd("exec", *options, "--", DEBIAN.path, "-u", PROGRAMS / "sleeper.py",
                        env={"E2E_LIFETIME": "3"})
    assert p.wait(timeout=60) == 0, p.describe()
    [(done_at, _)] = [(t, raw) for t, raw in p._lines["out"] if raw == b"done\n"]
    report_times = [t for t, raw in p._lines["err"] if raw.startswith(b"SLOW TASK")]
    assert report_times, p.describe()
    if report_now:
        assert min(report_times) < done_at - 1, p.describe()
    else:
        assert min(report_times) >= done_at, p.describe()
