"""A target that replaces its program (exec) is looked at again: watched again when it is a
supported CPython, and otherwise aiocopd says so and ends, instead of going quiet."""
import json

from aiocopd_e2e import ATTACH_TIMEOUT, INTERPRETERS, PROGRAMS, frame_of


def reports_of(lines, task):
    out = []
    for line in lines:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("type") == "slow_task" and r.get("task", {}).get("name") == task:
            out.append(r)
    return out


def test_target_that_execs_another_cpython_is_watched_again(paired):
    def scenario(harness, python):
        other = INTERPRETERS["py312" if python.kind != "py312" else "debian"].path
        env = {"E2E_EXEC_INTO": f"{other} -u {PROGRAMS / 'sleeper.py'}", "E2E_LIFETIME": "2",
               "E2E_EXEC_UNSET": " ".join(python.env)}
        target = harness.target(python, "exec_other.py", env=env)
        p = harness.aiocopd("-p", target.pid, "--json", "-d", "20")
        assert p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT), p.describe()
        assert target.wait(timeout=30) == 0, target.describe()
        assert p.wait(timeout=30) == 0, p.describe()
        again = [l for l in p.stderr if "replaced its program: watching it again" in l]
        assert len(again) == 1 and f"PID {target.pid}" in again[0], p.describe()
        before = reports_of(p.stdout, "before-exec")
        after = reports_of(p.stdout, "the-sleeper")
        assert before and after, p.describe()
        assert all(r["pid"] == target.pid for r in before + after)
        site = frame_of("sleeper.py", "sleep", "sleeper")
        assert all(r["blocking_events"][0]["entry_point"] == site for r in after), after[0]

    paired(scenario)


def test_target_that_execs_something_else_is_said_to_be_gone(paired, tmp_path):
    def scenario(harness, python):
        tmp = tmp_path / python.kind
        tmp.mkdir()
        out = tmp / "trace.json"
        target = harness.target(python, "exec_other.py", env={"E2E_EXEC_INTO": "/bin/sleep 3"})
        p = harness.aiocopd("trace", "-p", target.pid, "-d", "30", "-o", out)
        assert p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT), p.describe()
        gone = p.wait_line("err", lambda l: "replaced its program and is no longer watched" in l,
                           20)
        assert gone and "not a CPython process" in gone[1], p.describe()
        assert p.wait(timeout=30) == 0, p.describe()
        assert target.running(), "aiocopd ended after its target, not at its exec"
        doc = json.loads(out.read_text())
        assert doc["metadata"]["end_reason"] == "target_replaced", doc["metadata"]
        assert target.wait(timeout=30) == 0, target.describe()

    paired(scenario)
