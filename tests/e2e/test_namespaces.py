"""Targets in containers and chroots (issue 10 item 1, SPEC section 5), with the host's
interpreters: in a PID namespace of their own (bubblewrap, as a container runs them), in a
mount and PID namespace with another root assembled from bind mounts, and in a plain chroot
whose path prefix differs from ours, watched with -p, trace and exec.

Each asserts what the scenarios outside namespaces assert (event, category,
file:line:function, task name) and the ids the target sees: `ns_pid`/`ns_tid` equal to the
last field of its NSpid line when it has a PID namespace of its own, absent otherwise.
Under CI=true a missing bubblewrap fails these tests instead of skipping them.
"""
import json
import os
import re
import shutil
import tempfile

import jsonschema
import pytest

from aiocopd_e2e import (INTERPRETERS, PROGRAMS, REPO, as_root_with, build_test_root,
                         check_report, is_sleep_of, marker_line, missing, unavailable)

SCHEMA = json.loads((REPO / "docs" / "trace.schema.json").read_text())
SLEEP_LINE = marker_line("sleeper.py", "sleep")
# where the assembled root shows the programs: frames name the file as the target sees it
APP = "/app"
# root without CAP_SYS_ADMIN and CAP_CHECKPOINT_RESTORE: no /proc/PID/map_files, so the
# runtime is opened by the name maps shows (uprobe_multi links need neither)
NO_MAP_FILES = as_root_with(["bpf", "perfmon", "sys_ptrace"])


def need(tool):
    if shutil.which(tool) is None:
        unavailable(f"{tool} is needed for targets in namespaces (Makefile DEPS)")


def pid_ns_launcher():
    """bwrap as a container runs a program: its own PID and mount namespace, our files."""
    need("bwrap")
    return ["bwrap", "--die-with-parent", "--bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
            "--unshare-pid"]


def own_root_launcher():
    """bwrap with a root of its own: /usr and pyenv bound read-only, the programs in /app."""
    need("bwrap")
    return ["bwrap", "--die-with-parent", "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--ro-bind", "/root/.pyenv", "/root/.pyenv",
            "--ro-bind", str(PROGRAMS), APP, "--proc", "/proc", "--dev", "/dev",
            "--tmpfs", "/tmp", "--unshare-pid", "--chdir", APP]


@pytest.fixture
def chroot_dir():
    """An empty directory that a launcher binds our / onto (in a mount namespace of its own,
    gone with the target) and chroots into: a chroot whose paths differ from ours."""
    need("unshare")
    need("nsenter")
    d = tempfile.mkdtemp(prefix="aiocopd-chroot-", dir="/tmp")
    yield d
    os.rmdir(d)


def chroot_launcher(root):
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            'mount --rbind / "$0" && exec chroot "$0" "$@"', root]


def in_mount_ns_of(pid):
    """aiocopd run in the target's mount namespace: there the target is a plain chroot."""
    return ["nsenter", f"--mount=/proc/{pid}/ns/mnt", "--"]


def ns_ids(pid, tid=None):
    """(first, last) of the NSpid line of pid (or of its thread tid)."""
    path = f"/proc/{pid}/task/{tid}/status" if tid else f"/proc/{pid}/status"
    with open(path) as f:
        line = next(l for l in f if l.startswith("NSpid:"))
    ids = [int(x) for x in line.split()[1:]]
    return ids[0], ids[-1]


def pid_ns_inode(pid):
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def assert_sleeper(reports, pid, program_dir, ns_pid, describe, minimum=3):
    """Every report is the sleeper's, at its line, with the host's ids and the target's."""
    assert len(reports) >= minimum, f"expected >= {minimum} reports:\n{describe()}"
    site = f"{program_dir}/sleeper.py:{SLEEP_LINE}:sleeper"
    for r in reports:
        check_report(r, 30.0)
        # not `callback <loop iteration>`: the stack named the task's callback
        assert r["task"] is not None and r["task"]["coro"] == "sleeper", r
        assert r["task"]["name"] in ("the-sleeper", "?"), r
        assert r["pid"] == pid and r["tid"] == pid, r
        if ns_pid:
            assert r.get("ns_pid") == ns_pid and r.get("ns_tid") == ns_pid, r
        else:
            assert "ns_pid" not in r and "ns_tid" not in r, r
        sleeps = [e for e in r["blocking_events"] if e["category"] == "sleep"]
        assert len(sleeps) == 1 and is_sleep_of(sleeps[0]["event"], "0.06"), r
        assert [e["entry_point"] for e in sleeps] == [site], r
        assert sleeps[0]["trace"].startswith(site + " <- "), r
    assert [r for r in reports if r["task"]["name"] == "the-sleeper"], describe()


def place_line(stderr, pid):
    lines = [l for l in stderr if l.startswith(f"aiocopd: PID {pid}: root ")]
    assert len(lines) == 1, stderr
    return lines[0]


def test_pid_namespace(paired):
    """bwrap --unshare-pid: the stacks of the thread states are found although they record
    the ids the target sees (before: every stack empty, a `callback <loop iteration>`)."""
    def scenario(h, py):
        target = h.target(py, "sleeper.py", launcher=pid_ns_launcher())
        ids = ns_ids(target.pid)
        return target, ids, pid_ns_inode(target.pid), h.monitor(target, "-v", duration=1.5)

    target, (host, inner), ns, run = paired(scenario)
    assert run.rc == 0, run.describe()
    assert host == target.pid and inner != host, (host, inner)
    assert_sleeper(run.reports, target.pid, PROGRAMS, inner, run.describe)
    line = place_line(run.stderr, target.pid)
    assert f"its own PID namespace pid:[{ns}], where it is PID {inner};" in line, line


def test_pid_namespace_two_loop_threads(harness):
    """Loops in two threads of a target in its own PID namespace: each report carries its
    thread's own ns_tid (not the process's)."""
    py = INTERPRETERS["debian"]
    target = harness.target(py, "two_loops.py", launcher=pid_ns_launcher())
    _, ns_pid = ns_ids(target.pid)
    expected = {}
    for tid in os.listdir(f"/proc/{target.pid}/task"):
        expected[int(tid)] = ns_ids(target.pid, tid)[1]
    run = harness.monitor(target, duration=1.5)
    assert run.rc == 0, run.describe()
    tids = {}
    for task, coro, tag in (("blocker-a", "blocker_a", "sleep-a"),
                            ("blocker-b", "blocker_b", "sleep-b")):
        reports = run.for_task(task, coro)
        assert len(reports) >= 3, run.describe()
        site = f"{PROGRAMS}/two_loops.py:{marker_line('two_loops.py', tag)}:{coro}"
        for r in reports:
            assert r["pid"] == target.pid and r["tid"] != target.pid, r
            assert r["ns_pid"] == ns_pid and r["ns_tid"] == expected[r["tid"]], r
            assert r["ns_tid"] != ns_pid, r
            assert [e["entry_point"] for e in r["blocking_events"]] == [site], r
        tids[task] = {r["tid"] for r in reports}
    assert len(tids["blocker-a"] | tids["blocker-b"]) == 2, tids


def test_own_root_mount_and_pid_namespace(paired):
    """bwrap with a root assembled from bind mounts: the target's files are the host's under
    other names; frames name them as the target does (/app/sleeper.py)."""
    def scenario(h, py):
        # sid's interpreters need sid's libraries: their root is the container's
        launcher = sid_bwrap_launcher(build_test_root(py.root)) if py.root else own_root_launcher()
        target = h.target(py.inside_root() if py.root else py, "sleeper.py", launcher=launcher,
                          program_dir=APP)
        return target, ns_ids(target.pid)[1], h.monitor(target, "-v", duration=1.5)

    target, inner, run = paired(scenario)
    assert run.rc == 0, run.describe()
    assert_sleeper(run.reports, target.pid, APP, inner, run.describe)
    line = place_line(run.stderr, target.pid)
    assert "of its own mount namespace" in line and "another directory than ours" in line, line


CHROOT_CASES = {
    # Debian's runtime is the executable: /proc/PID/exe names it whatever the root
    "debian": ((), "/proc/PID/map_files"),
    # pyenv's is libpython3.11.so, named in maps by our path (the chroot's prefix and all):
    # read in the target's root that name leads nowhere
    "pyenv-no-map-files": (NO_MAP_FILES, "its name in our root"),
}


@pytest.mark.parametrize("case", list(CHROOT_CASES))
def test_plain_chroot(harness, chroot_dir, case):
    """`chroot DIR python`: maps names the host's path (DIR/...), the ids are the host's."""
    caps, via = CHROOT_CASES[case]
    py = INTERPRETERS[case.split("-")[0]]
    target = harness.target(py, "sleeper.py", launcher=chroot_launcher(chroot_dir))
    assert os.readlink(f"/proc/{target.pid}/root") == chroot_dir
    with open(f"/proc/{target.pid}/maps") as f:
        assert f" {chroot_dir}{py.path}\n" in f.read()
    run = harness.monitor(target, "-v", duration=1.5,
                          prefix=in_mount_ns_of(target.pid) + list(caps))
    assert run.rc == 0, run.describe()
    assert_sleeper(run.reports, target.pid, PROGRAMS, None, run.describe)
    line = place_line(run.stderr, target.pid)
    assert f"root {chroot_dir} (chroot), our PID namespace; " in line, line
    assert line.endswith(f"runtime opened through {via}"), line


def test_trace_in_pid_namespace(harness, tmp_path):
    """trace: the document validates, its process names ns_pid, its loop ns_tid, its
    reports both."""
    py = INTERPRETERS["debian"]
    target = harness.target(py, "sleeper.py", launcher=pid_ns_launcher())
    _, inner = ns_ids(target.pid)
    out = tmp_path / "trace.json"
    p = harness.aiocopd("trace", "-p", str(target.pid), "-d", "2", "-o", str(out))
    assert p.wait(timeout=45) == 0, p.describe()
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    procs = doc["metadata"]["processes"]
    assert [(x["pid"], x.get("ns_pid")) for x in procs] == [(target.pid, inner)], procs
    assert [(l["tid"], l.get("ns_tid")) for l in doc["loops"]] == [(target.pid, inner)], \
        doc["loops"]
    assert_sleeper(doc["reports"], target.pid, PROGRAMS, inner, p.describe)


EXEC_CASES = {
    "debian-pid-namespace": ("debian", pid_ns_launcher, PROGRAMS),
    "pyenv-own-root": ("pyenv", own_root_launcher, APP),
}


@pytest.mark.parametrize("case", list(EXEC_CASES))
def test_exec_through_bwrap(harness, case):
    """`aiocopd exec -- bwrap ... python app.py`: the Python that bwrap starts inside its
    namespaces is found at its exec and watched from its first callback; -v says where."""
    kind, launcher, program_dir = EXEC_CASES[case]
    py = INTERPRETERS[kind]
    argv = [*launcher(), py.path, "-u", f"{program_dir}/sleeper.py"]
    p = harness.aiocopd("exec", "-v", "--json", "--", *argv,
                        env={"E2E_LIFETIME": "2"})
    assert p.wait(timeout=60) == 0, p.describe()
    assert "done" in p.stdout, p.describe()
    watching = [re.fullmatch(r"aiocopd: watching PID (\d+) \(CPython [\d.]+\)", l)
                for l in p.stderr]
    pids = [int(m.group(1)) for m in watching if m]
    assert len(pids) == 1, p.describe()
    line = place_line(p.stderr, pids[0])
    m = re.search(r"its own PID namespace pid:\[\d+\], where it is PID (\d+);", line)
    assert m and int(m.group(1)) != pids[0], line
    reports = []
    for l in p.stderr:
        if l.startswith("{"):
            reports.append(json.loads(l))
    assert_sleeper(reports, pids[0], program_dir, int(m.group(1)), p.describe, minimum=5)


# ---- sid's CPython 3.14 and 3.15 in their own root --------------------------------------

def sid_bwrap_launcher(root):
    """A container: sid's root as /, its own mount and PID namespace, the programs in /app."""
    need("bwrap")
    return ["bwrap", "--die-with-parent", "--bind", root, "/", "--ro-bind", str(PROGRAMS), APP,
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--unshare-pid",
            "--chdir", APP]


def sid_chroot_launcher(root):
    """A plain `chroot ROOT python`, in our mount namespace: maps names the host's path,
    ROOT/usr/bin/python3.X."""
    need("chroot")
    return ["chroot", root]


@pytest.fixture
def programs_in_root():
    """{root: the programs' directory as the target sees it}: a copy of the programs inside
    sid's root (a plain chroot sees nothing else), gone after the test."""
    made = {}

    def place(root):
        d = tempfile.mkdtemp(prefix="aiocopd-e2e-", dir=f"{root}/tmp")
        shutil.copytree(PROGRAMS, d, dirs_exist_ok=True)
        made[root] = d
        return d[len(root):]

    yield place
    for d in made.values():
        shutil.rmtree(d, ignore_errors=True)


SID_LAUNCHERS = {"bwrap": sid_bwrap_launcher, "chroot": sid_chroot_launcher}


def sid_interpreter(kind):
    py = INTERPRETERS[kind]
    why = missing(py)
    if why:
        unavailable(why)
    return py.inside_root(), build_test_root(py.root)


@pytest.mark.parametrize("how", list(SID_LAUNCHERS))
@pytest.mark.parametrize("kind", ["py314", "py315"])
def test_sid_interpreter_in_its_root(harness, programs_in_root, kind, how):
    """sid's stripped 3.14 and 3.15 as users run them: in a container of their own root, or
    chrooted into it; frames are named as the target names its files."""
    py, root = sid_interpreter(kind)
    where = APP if how == "bwrap" else programs_in_root(root)
    target = harness.target(py, "sleeper.py", launcher=SID_LAUNCHERS[how](root),
                            program_dir=where)
    inner = ns_ids(target.pid)[1] if how == "bwrap" else None
    run = harness.monitor(target, "-v", duration=1.5)
    assert run.rc == 0, run.describe()
    assert_sleeper(run.reports, target.pid, where, inner, run.describe)
    line = place_line(run.stderr, target.pid)
    assert ("of its own mount namespace" if how == "bwrap" else f"root {root} (chroot)") in line


def test_uvloop_on_314_in_a_container(harness):
    """uvloop (sid's python3-uvloop, built for 3.14) in a container: its task step and timer
    callback are found and named, bounded by PyContext_Enter once armed."""
    py, root = sid_interpreter("py314")
    target = harness.target(py, "uvloop_app.py", launcher=sid_bwrap_launcher(root),
                            program_dir=APP)
    run = harness.monitor(target, duration=2)
    assert run.rc == 0, run.describe()
    inner = ns_ids(target.pid)[1]
    steps = run.for_task("?", "sleeper") + run.for_task("uv-sleeper", "sleeper")
    timers = run.for_callback("on_timer")
    assert len(steps) >= 3 and len(timers) >= 3, run.describe()
    for r, tag, function in [(r, "sleep", "sleeper") for r in steps] + \
                            [(r, "timer", "on_timer") for r in timers]:
        site = f"{APP}/uvloop_app.py:{marker_line('uvloop_app.py', tag)}:{function}"
        assert [e["entry_point"] for e in r["blocking_events"]] == [site], r
        assert r["blocking_events"][0]["category"] == "sleep", r
        assert r["ns_pid"] == inner, r
    exact = [r for r in steps if r["attribution"] == "callback"]
    assert exact, run.describe()
    assert all(r["task"] == {"name": "uv-sleeper", "coro": "sleeper"} for r in exact), exact


@pytest.mark.parametrize("kind", ["py314", "py315"])
def test_exec_of_a_container_with_sid_python(harness, kind):
    """`aiocopd exec -- bwrap --bind SID / ... python3.X app.py`: watched from its first
    callback, in its own namespaces."""
    py, root = sid_interpreter(kind)
    argv = [*sid_bwrap_launcher(root), py.path, "-u", f"{APP}/sleeper.py"]
    p = harness.aiocopd("exec", "-v", "--json", "--", *argv, env={"E2E_LIFETIME": "2"})
    assert p.wait(timeout=60) == 0, p.describe()
    assert "done" in p.stdout, p.describe()
    pids = [int(m.group(1)) for m in
            (re.fullmatch(r"aiocopd: watching PID (\d+) \(CPython 3\.1[45]\.\d+\)", l)
             for l in p.stderr) if m]
    assert len(pids) == 1, p.describe()
    line = place_line(p.stderr, pids[0])
    m = re.search(r"its own PID namespace pid:\[\d+\], where it is PID (\d+);", line)
    assert m, line
    reports = [json.loads(l) for l in p.stderr if l.startswith("{")]
    assert_sleeper(reports, pids[0], APP, int(m.group(1)), p.describe, minimum=5)
