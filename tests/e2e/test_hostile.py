"""Hostile or unlucky circumstances: target strings are the target's to choose, so text
output escapes them for the terminal; a killed trace leaves nothing beside its output."""
import os
import signal

from aiocopd_e2e import ATTACH_TIMEOUT, PROGRAMS, frame_of


def test_text_output_escapes_a_hostile_task_name(harness, python):
    target = harness.target(python, "hostile_name.py")
    p = harness.aiocopd("-p", target.pid, "-d", "2")
    assert p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT), p.describe()
    assert p.wait(timeout=60) == 0, p.describe()
    raw = b"".join(p.raw_lines("out"))
    assert raw, p.describe()
    assert not any(c < 0x20 and c != 0x0a or c == 0x7f for c in raw), \
        f"raw control characters reach the terminal: {raw[:300]!r}"
    text = raw.decode()
    headers = [l for l in text.splitlines() if l.startswith("SLOW TASK DETECTED")]
    assert headers, text
    # every header is a real report's (a forged one would start a line with 999.0ms)
    assert all(not l.startswith("SLOW TASK DETECTED: 999.0ms") for l in headers), text
    escaped = "evil\\x0aSLOW TASK DETECTED: 999.0ms\\x1b[31m\\x1b]0;pwned\\x07"
    named = [l for l in headers if f"task '{escaped}'" in l]
    assert named, f"the task name is not shown escaped:\n{text}"
    site = frame_of("hostile_name.py", "block", "blocker").rsplit("/", 1)[1]
    assert f"at {site}" in text, text


def test_corrupt_frames_and_names_are_unknown(harness, python):
    """A code object with a negative co_firstlineno and a Task whose name is a bytes object
    dressed as a str: the report shows an unknown line and an unknown name, never the
    target's numbers or bytes (issue 9 item 8)."""
    target, run = harness.watch(python, "hostile_frames.py", "--all", duration=2)
    assert run.rc == 0, run.describe()
    raw = b"".join(run.proc.raw_lines("out"))
    assert b"forged" not in raw and b"1519441556" not in raw, raw[:600]
    reports = [r for r in run.reports if r["task"] and r["task"]["coro"] == "hostile_blocker"
               and r["elapsed_ms"] >= 50]
    assert len(reports) >= 3, run.describe()
    site = f"{PROGRAMS / 'hostile_frames.py'}:?:corrupt_sleeper"
    for r in reports:
        assert r["task"]["name"] == "?", r
        sleeps = [e for e in r["blocking_events"] if e["category"] == "sleep"]
        assert sleeps and all(e["entry_point"] == site for e in sleeps), r
        assert all(e["trace"].startswith(site + " <- ") for e in sleeps), r


def test_a_killed_trace_leaves_no_temporary_file(harness, python, tmp_path):
    """SIGKILL mid-trace: the document is not written, and nothing is left beside it (the
    temporary file has no name until it is complete)."""
    target = harness.target(python, "sleeper.py")
    out = tmp_path / "trace.json"
    p = harness.aiocopd("trace", "-p", target.pid, "-d", "30", "-o", out)
    assert p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT), p.describe()
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=60) == -signal.SIGKILL, p.describe()
    assert os.listdir(tmp_path) == [], os.listdir(tmp_path)
