"""Privileges as the README's table says (measured on kernel 6.18): aiocopd run with reduced
capability sets, as root dropping capabilities and as a user other than root with ambient
capabilities, against a real Python target, in every mode (-p, -p --all, trace, exec).

What is not enough ends the run at once with status 1 and exactly one line on stderr naming
the missing capability and what it is for; what is enough reports the target's slow task.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from aiocopd_e2e import (AIOCOPD, INTERPRETERS, PROGRAMS, Interpreter, as_nobody_with,
                         as_root_with, unavailable)

PYTHON = INTERPRETERS["debian"]
ENOUGH = ["bpf", "perfmon", "sys_ptrace"]          # root, uprobe_multi links (Linux 6.6+)
MODES = ["live", "all", "trace", "exec"]
PERF_UPROBES = {"AIOCOPD_NO_UPROBE_MULTI": "1"}    # the way kernels before 6.6 attach


@pytest.fixture
def shared_dir():
    """A directory every user may write to (trace's document, written as nobody)."""
    d = tempfile.mkdtemp(prefix="aiocopd-priv-", dir="/tmp")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_mode(harness, mode, prefix, env, out_dir):
    """aiocopd in mode under prefix, against a fresh sleeper; returns the finished Proc."""
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run aiocopd with reduced capabilities")
    if not os.path.exists(PYTHON.path):
        unavailable(f"{PYTHON.path} is not installed")
    full_env = dict(os.environ, E2E_LIFETIME="3", **env)
    sleeper = str(PROGRAMS / "sleeper.py")
    if mode == "exec":
        argv = ["exec", "--json", "--", PYTHON.path, "-u", sleeper]
    else:
        target = harness.target(PYTHON, "sleeper.py", env={"E2E_LIFETIME": "20"})
        argv = {"live": ["-p", target.pid, "--json", "-d", "2"],
                "all": ["-p", target.pid, "--json", "--all", "-d", "2"],
                "trace": ["trace", "-p", target.pid, "-d", "2",
                          "-o", os.path.join(out_dir, "trace.json")]}[mode]
    p = harness.spawn(prefix + [AIOCOPD, *argv], env=full_env)
    assert p.wait(timeout=60) is not None, p.describe()
    return p


def sleeper_reports(p, mode, out_dir):
    if mode == "trace":
        with open(os.path.join(out_dir, "trace.json")) as f:
            reports = json.load(f)["reports"]
    else:
        reports = []
        # exec reports on stderr: stdout is the command's
        for line in p.stderr if mode == "exec" else p.stdout:
            try:
                reports.append(json.loads(line))
            except ValueError:
                pass    # aiocopd's own messages
    return [r for r in reports if isinstance(r, dict) and r.get("type") == "slow_task"
            and (r.get("task") or {}).get("coro") == "sleeper"]


# what is refused: (who runs aiocopd, extra environment, the capability the line must name,
# words of its purpose)
REFUSED = {
    # perf-event uprobes take CAP_SYS_ADMIN again on this kernel
    "root-perf-uprobes": (as_root_with(ENOUGH), PERF_UPROBES, "CAP_SYS_ADMIN", "perf events"),
    # tracefs is mounted, in a directory only root may enter (0700)
    "nobody-tracefs": (as_nobody_with(ENOUGH), {}, "CAP_DAC_READ_SEARCH", "tracefs"),
    "nobody-perf-uprobes": (as_nobody_with(ENOUGH + ["dac_read_search"]), PERF_UPROBES,
                            "CAP_SYS_ADMIN", "perf events"),
    "root-no-ptrace": (as_root_with(["bpf", "perfmon"]), {}, "CAP_SYS_PTRACE", "memory"),
    "root-no-perfmon": (as_root_with(["bpf", "sys_ptrace"]), {}, "CAP_PERFMON", "attach"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(REFUSED))
def test_missing_privilege_is_one_line_and_status_1(harness, shared_dir, case, mode):
    prefix, env, cap, purpose = REFUSED[case]
    p = run_mode(harness, mode, prefix, env, shared_dir)
    assert p.popen.returncode == 1, p.describe()
    mine = [l for l in p.stderr if l.startswith("aiocopd: ")]
    assert len(mine) == 1, f"expected exactly one line from aiocopd:\n{p.describe()}"
    assert mine[0].startswith("aiocopd: missing privileges: "), mine[0]
    assert cap in mine[0] and purpose in mine[0], mine[0]
    assert not sleeper_reports(p, mode if mode == "exec" else "live", shared_dir), p.describe()


def test_tracefs_not_mounted_names_cap_sys_admin(harness, shared_dir):
    """In a mount namespace of its own without tracefs, aiocopd would mount it: without
    CAP_SYS_ADMIN it says so (the machine's own tracefs mount is untouched)."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed for a mount namespace without tracefs")
    target = harness.target(PYTHON, "sleeper.py", env={"E2E_LIFETIME": "20"})
    inner = " ".join(as_root_with(ENOUGH) + [AIOCOPD, "-p", str(target.pid), "--json",
                                            "-d", "1"])
    p = harness.spawn(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       f"umount /sys/kernel/tracing 2>/dev/null; exec {inner}"])
    assert p.wait(timeout=60) == 1, p.describe()
    assert len(p.stderr) == 1, p.describe()
    line = p.stderr[0]
    assert line.startswith("aiocopd: missing privileges: CAP_SYS_ADMIN"), line
    assert "mount tracefs" in line, line


# what is enough, on this kernel: (who, extra environment)
ENOUGH_SETS = {
    "root-bpf-perfmon-ptrace": (as_root_with(ENOUGH), {}),
    "nobody-plus-dac-read-search": (as_nobody_with(ENOUGH + ["dac_read_search"]), {}),
    "root-perf-uprobes-with-sys-admin": (as_root_with(ENOUGH + ["sys_admin"]), PERF_UPROBES),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", list(ENOUGH_SETS))
def test_enough_privileges_report(harness, shared_dir, case, mode):
    prefix, env = ENOUGH_SETS[case]
    p = run_mode(harness, mode, prefix, env, shared_dir)
    assert p.popen.returncode == 0, p.describe()
    assert not [l for l in p.stderr if "missing" in l or "denied" in l], p.describe()
    assert sleeper_reports(p, mode, shared_dir), f"no report of the sleeper:\n{p.describe()}"
