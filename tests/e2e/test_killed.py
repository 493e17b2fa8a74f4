"""However aiocopd ends, nothing it holds stays stopped. BPF holds processes stopped for it
(at their exec and entry point under `exec`, at Py_FinalizeEx for every watched process) and
only aiocopd continues them; killed, its programs run on for seconds while the kernel
detaches them. Killed at random moments, the command it watched must finish by itself."""
import os
import random
import signal
import time

from aiocopd_e2e import ATTACH_TIMEOUT, PROGRAMS, Interpreter

PYTHON = "/usr/bin/python3.11"
KILLS = 3
# the spawner runs 3 s; aiocopd's programs may linger some 5 s after its SIGKILL
FINISH_TIMEOUT = 45


def state(pid):
    """The one-letter state of pid ('T': stopped), or None once it is gone or reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                found += kids
                todo += kids
        except (FileNotFoundError, ProcessLookupError):
            pass
    return found


def stopped_in(pid):
    return [p for p in [pid] + descendants(pid) if state(p) == "T"]


def rescue(pid):
    """Continue and end what a failed run left behind (we started it)."""
    for p in [pid] + descendants(pid):
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass


def test_exec_killed_at_random_moments_leaves_nothing_stopped(harness):
    rng = random.Random(9)
    for attempt in range(KILLS):
        p = harness.aiocopd("exec", "--", PYTHON, PROGRAMS / "spawner.py")
        first = p.wait_line("out", lambda l: l.startswith("pid "), ATTACH_TIMEOUT)
        assert first, p.describe()
        spawner = int(first[1].split()[1])
        time.sleep(rng.uniform(0.0, 2.0))
        os.kill(p.pid, signal.SIGKILL)
        assert p.wait(timeout=30) == -signal.SIGKILL, p.describe()
        deadline = time.monotonic() + FINISH_TIMEOUT
        while state(spawner) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        left = stopped_in(spawner)
        if state(spawner) is not None:
            rescue(spawner)
        assert state(spawner) is None, \
            f"kill {attempt}: the command still runs {FINISH_TIMEOUT}s after aiocopd's " \
            f"SIGKILL, stopped: {left}\n{p.describe()}"
        assert "done" in p.stdout, f"kill {attempt}: the command did not finish\n{p.describe()}"


def test_live_killed_while_its_target_finalizes_leaves_it_running(harness):
    """aiocopd -p holds a target at Py_FinalizeEx; SIGSTOPped, it holds it there, and a
    SIGKILL then must let the target go on and exit."""
    start = f"/tmp/aiocopd-e2e-start.{os.getpid()}"
    env = {"E2E_START_FILE": start}
    try:
        target = harness.target(Interpreter("debian", PYTHON), "short_lived.py", env=env)
        p = harness.aiocopd("-p", target.pid, "--json")
        assert p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT), p.describe()
        os.kill(p.pid, signal.SIGSTOP)
        open(start, "w").close()
        deadline = time.monotonic() + 20
        while state(target.pid) != "T" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert state(target.pid) == "T", "the target was not held at its finalization"
        os.kill(p.pid, signal.SIGKILL)
        assert target.wait(timeout=FINISH_TIMEOUT) == 0, target.describe()
    finally:
        if os.path.exists(start):
            os.unlink(start)
