"""Hostile or unlucky circumstances: target strings are the target's to choose, so text
output escapes them for the terminal, and values read from corrupt memory show as unknown; a
killed trace leaves nothing beside its output; the names a target maps its files under are
its to choose, so aiocopd opens what it mapped."""
import json
import os
import shutil
import signal
import threading

import pytest

from aiocopd_e2e import (AIOCOPD, ATTACH_TIMEOUT, INTERPRETERS, PROGRAMS, Interpreter,
                         as_root_with, frame_of, unavailable)


def test_text_output_escapes_a_hostile_task_name(paired):
    def scenario(harness, python):
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

    paired(scenario)


def test_corrupt_frames_and_names_are_unknown(paired):
    """A code object with a negative co_firstlineno and a Task whose name is a bytes object
    dressed as a str: the report shows an unknown line and an unknown name, never the
    target's numbers or bytes (issue 9 item 8)."""
    def scenario(harness, python):
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

    paired(scenario)


# (one interpreter: the document is aiocopd's, and each killed aiocopd costs the kernel
# about 10 s of closing its perf-event links one by one)
@pytest.mark.parametrize("python", ["debian"], indirect=True)
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


class OpenedWatch:
    """Tells whether anyone opened a FIFO to read it: a writer's open() blocks until then."""

    def __init__(self, fifo):
        self.fifo = fifo
        self.opened = threading.Event()
        self.closing = False
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self):
        fd = os.open(self.fifo, os.O_WRONLY)
        if not self.closing:
            self.opened.set()
        os.close(fd)

    def close(self):
        self.closing = True
        fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)    # lets the writer go
        self.thread.join(timeout=10)
        os.close(fd)


def runtime_under_a_newline_name(tmp_path, kind):
    """The interpreter's runtime file (Debian's executable, or pyenv's libpython) in a
    directory named "evil<newline>lib". /proc/PID/maps shows that name as "evil\\012lib", and
    the target made that name a symlink to a directory where the file is a FIFO decoy.
    Returns the interpreter, its environment and the decoy."""
    real, decoys = tmp_path / "evil\nlib", tmp_path / "decoys"
    real.mkdir()
    decoys.mkdir()
    (tmp_path / "evil\\012lib").symlink_to(decoys)
    if kind == "debian":
        name = "python3.11"
        shutil.copy2(INTERPRETERS["debian"].path, real / name)
        interp, env = Interpreter("newline-debian", str(real / name)), {}
    else:
        interp, env, copy = pyenv_with_libpython_in(real)
        name = copy.name
    os.mkfifo(decoys / name)
    return interp, env, decoys / name


def pyenv_with_libpython_in(directory):
    """pyenv's 3.11 loading a copy of its libpython from directory: (interpreter, its
    environment, the copy)."""
    name = "libpython3.11.so.1.0"
    pyenv = INTERPRETERS["pyenv"].path
    copy = directory / name
    shutil.copy2(os.path.join(os.path.dirname(pyenv), "..", "lib", name), copy)
    return Interpreter("pyenv-copy", pyenv), {"LD_LIBRARY_PATH": str(directory)}, copy


@pytest.mark.parametrize("privileges", ["root", "bpf-perfmon-ptrace"])
@pytest.mark.parametrize("kind", ["debian", "pyenv"])
def test_runtime_is_opened_as_mapped_not_by_its_shown_name(harness, tmp_path, kind, privileges):
    """With every capability aiocopd reads /proc/PID/map_files/; with CAP_BPF, CAP_PERFMON
    and CAP_SYS_PTRACE alone it checks a name against the mapping's device and inode before
    it opens anything. Either way it never opens the decoy, and reports the target."""
    if not os.path.exists(INTERPRETERS[kind].path):
        unavailable(f"{INTERPRETERS[kind].path} is not installed")
    interp, env, decoy = runtime_under_a_newline_name(tmp_path, kind)
    watch = OpenedWatch(decoy)
    try:
        target = harness.target(interp, "sleeper.py", env=env)
        with open(f"/proc/{target.pid}/maps") as f:
            assert "evil\\012lib" in f.read(), "the trap is not set: maps shows another name"
        prefix = [] if privileges == "root" else as_root_with(["bpf", "perfmon", "sys_ptrace"])
        p = harness.spawn(prefix + [AIOCOPD, "-p", target.pid, "--json", "-d", "2"])
        rc = p.wait(timeout=60)
        assert not watch.opened.is_set(), f"aiocopd opened the decoy {decoy}:\n{p.describe()}"
        assert rc == 0, p.describe()
        reports = [json.loads(l) for l in p.stdout]
        assert [r for r in reports if r["task"]["coro"] == "sleeper"], p.describe()
    finally:
        watch.close()


@pytest.mark.parametrize("privileges", ["root", "bpf-perfmon-ptrace"])
def test_deleted_runtime_is_opened_through_map_files(harness, tmp_path, privileges):
    """The runtime file deleted once mapped: no name leads to it, /proc/PID/map_files/ does.
    With every capability aiocopd reports the target; without CAP_CHECKPOINT_RESTORE (or
    CAP_SYS_ADMIN) it refuses, in one line naming that capability."""
    if not os.path.exists(INTERPRETERS["pyenv"].path):
        unavailable(f"{INTERPRETERS['pyenv'].path} is not installed")
    interp, env, copy = pyenv_with_libpython_in(tmp_path)
    target = harness.target(interp, "sleeper.py", env=env)
    os.unlink(copy)
    prefix = [] if privileges == "root" else as_root_with(["bpf", "perfmon", "sys_ptrace"])
    p = harness.spawn(prefix + [AIOCOPD, "-p", target.pid, "--json", "-d", "2"])
    rc = p.wait(timeout=60)
    if privileges == "root":
        assert rc == 0, p.describe()
        reports = [json.loads(l) for l in p.stdout]
        assert [r for r in reports if r["task"]["coro"] == "sleeper"], p.describe()
    else:
        assert rc == 1, p.describe()
        assert len(p.stderr) == 1, p.describe()
        line = p.stderr[0]
        assert "(deleted) as PID" in line and "missing privileges: CAP_CHECKPOINT_RESTORE" \
            in line and "map_files" in line, line
