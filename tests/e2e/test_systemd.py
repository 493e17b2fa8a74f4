"""aiocopd's unit under a real systemd: a Debian bookworm root (tools/test-root.sh systemd)
booted with systemd-nspawn (tests/e2e/nspawn.py), this tree installed into it with
`make install`, and driven with systemctl and journalctl as an operator would.

What needs only the unit (boot, load, verify, the sandbox's capabilities) runs on any build.
The tests of the service itself need `aiocopd service`; where the binary has no such command
they fail, saying so.
"""
import json
import re
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from aiocopd_e2e import (AIOCOPD, PROGRAMS, bpf_programs, is_aiocopd_prog_name, marker_line,
                         prog_ids_held_by, prog_ids_held_by_anyone)
from nspawn import Machine, make_install

PREFIX = "/usr"                             # a distribution's layout: /usr/sbin/aiocopd
DEMO_DIR = "/usr/local/lib/aiocopd-test"
DEMO = f"{DEMO_DIR}/unit_blocker.py"
DROPIN = "/etc/aiocopd/aiocopd.conf.d/test.conf"
UNIT_CAPABILITIES = ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"]
PRIORITY = {"high": "4", "medium": "5", "low": "6"}     # SPEC 6.3
REPORT_TIMEOUT = 30.0       # seconds from the service's start (or a reload) to a report


DEMO_UNIT = f"""[Unit]
Description=an asyncio service that holds its loop 100 ms a second

[Service]
ExecStart=/usr/bin/python3 {DEMO}

[Install]
WantedBy=multi-user.target
"""


@pytest.fixture(scope="module")
def machine():
    with Machine() as m:
        make_install(m.root, f"PREFIX={PREFIX}")
        demo = m.path(DEMO)
        demo.parent.mkdir(parents=True, exist_ok=True)
        demo.write_text((PROGRAMS / "unit_blocker.py").read_text())
        m.path("/etc/systemd/system/demo.service").write_text(DEMO_UNIT)
        m.run("systemctl", "daemon-reload")
        m.run("systemctl", "start", "demo.service")
        yield m


def show(machine, unit, prop):
    return machine.run("systemctl", "show", "-P", prop, unit).stdout.strip()


def journal_cursor(machine):
    out = machine.run("journalctl", "-n", "0", "--show-cursor", "--no-pager").stdout
    return re.search(r"-- cursor: (\S+)", out)[1]


def test_boots_to_running(machine):
    assert machine.run("cat", "/proc/1/comm").stdout.strip() == "systemd"
    assert machine.run("systemctl", "is-system-running").stdout.strip() == "running"
    assert machine.boot_seconds < 30, machine.boot_seconds


def test_installed_unit_loads_and_verifies_silently(machine):
    machine.run("systemctl", "daemon-reload")
    assert show(machine, "aiocopd.service", "LoadState") == "loaded"
    assert show(machine, "aiocopd.service", "FragmentPath") == "/lib/systemd/system/aiocopd.service"
    assert show(machine, "aiocopd.service", "UnitFileState") == "disabled"
    r = machine.run("systemd-analyze", "verify", "aiocopd.service", check=False)
    assert r.returncode == 0 and r.stdout + r.stderr == "", \
        f"systemd-analyze verify (exit {r.returncode}) said:\n{r.stdout}{r.stderr}"


# ---- the unit's sandbox and capabilities, with the live monitor in it -----------------------

def run_in_the_units_sandbox(machine, argv, capabilities):
    """argv (aiocopd's arguments) run once in a copy of the installed unit that differs only
    in what it runs and in its capabilities: (exit status, its lines in the journal)."""
    unit = machine.path("/lib/systemd/system/aiocopd.service").read_text()
    unit = re.sub(r"(?m)^Type=.*$", "Type=exec", unit)
    unit = re.sub(r"(?m)^(WatchdogSec|Restart|RestartSec)=.*\n", "", unit)
    unit = re.sub(r"(?m)^ExecStart=.*$", "ExecStart=" + " ".join([f"{PREFIX}/sbin/aiocopd",
                                                                   *argv]), unit)
    caps = " ".join(capabilities)
    unit = re.sub(r"(?m)^(CapabilityBoundingSet|AmbientCapabilities)=.*$", rf"\1={caps}", unit)
    machine.path("/etc/systemd/system/aiocopd-sandbox.service").write_text(unit)
    machine.run("systemctl", "daemon-reload")
    cursor = journal_cursor(machine)
    machine.run("systemctl", "start", "--wait", "aiocopd-sandbox.service", check=False,
                timeout=60)
    status = int(show(machine, "aiocopd-sandbox.service", "ExecMainStatus"))
    for _ in range(50):         # its stderr reaches the journal through a stream: a moment
        lines = machine.run("journalctl", "-o", "cat", "--no-pager", "-u",
                            "aiocopd-sandbox.service", f"--after-cursor={cursor}").stdout
        # (not by _COMM: a line read after the process exited has none)
        lines = [line for line in lines.splitlines() if line.startswith("aiocopd:")]
        if lines:
            break
        time.sleep(0.1)
    return status, lines


@pytest.mark.parametrize("dropped", [None, *UNIT_CAPABILITIES])
def test_the_units_capabilities_are_needed_and_enough(machine, dropped):
    """README "The unit and its privileges": its four capabilities let aiocopd load and attach as its
    transient user, in its sandbox, to another user's process; without any one of them it
    refuses to start, naming it."""
    pid = int(show(machine, "demo.service", "MainPID"))
    caps = [c for c in UNIT_CAPABILITIES if c != dropped]
    rc, lines = run_in_the_units_sandbox(machine, ["-p", str(pid), "-d", "1"], caps)
    if dropped is None:
        assert rc == 0 and any(f"attached to PID {pid} " in line for line in lines), lines
    else:
        assert rc == 1, lines
        assert any(line.startswith("aiocopd: missing privileges: ") and dropped in line
                   for line in lines), lines


# ---- the service (needs `aiocopd service`) ---------------------------------------------------

def require_service():
    """Fails the test unless this build has `aiocopd service` (SPEC 6.1): its --help, and
    --check-config accepting a configuration with no rule."""
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as conf:
        conf.write("[service]\nthreshold_ms = 30\n")
        conf.flush()
        for argv in (["service", "--help"], ["service", "--check-config", "-c", conf.name]):
            r = subprocess.run([AIOCOPD, *argv], capture_output=True, text=True, timeout=30)
            if r.returncode != 0:
                pytest.fail(f"{AIOCOPD} has no working `service` command yet (`aiocopd "
                            f"{' '.join(argv)}` exited {r.returncode}: "
                            f"{(r.stderr or r.stdout).strip()[:200]}): the service's tests "
                            f"fail until it has one", pytrace=False)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_dropin(machine, port, threshold_ms):
    machine.path(DROPIN).write_text(
        "[service]\n"
        f"metrics_listen = 127.0.0.1:{port}\n"
        "report_limit_per_minute = 1000\n"
        "\n"
        "[watch \"demo\"]\n"
        "unit = demo.service\n"
        f"threshold_ms = {threshold_ms}\n")


def service_entries(machine, cursor):
    """The service's journal entries after cursor, as dicts."""
    out = machine.run("journalctl", "-o", "json", "--no-pager", "-u", "aiocopd.service",
                      f"--after-cursor={cursor}").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def reports_after(machine, cursor):
    return [e for e in service_entries(machine, cursor) if "AIOCOPD_SERVICE" in e]


def wait_reports(machine, cursor, timeout=REPORT_TIMEOUT, want=1):
    deadline = time.monotonic() + timeout
    while True:
        reports = reports_after(machine, cursor)
        if len(reports) >= want or time.monotonic() > deadline:
            return reports
        time.sleep(0.5)


def reload(machine):
    """`systemctl reload aiocopd`, then until the service says READY=1 again."""
    machine.run("systemctl", "reload", "aiocopd.service")
    deadline = time.monotonic() + 30
    while show(machine, "aiocopd.service", "ActiveState") != "active":
        assert time.monotonic() < deadline, "still reloading after 30 s"
        time.sleep(0.1)


def metric(port, name, **labels):
    """The value of one series at the service's endpoint (the container shares the host's
    network), read with Prometheus' own parser; None when it is not there."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_shipped_configuration_checks(machine):
    require_service()
    r = machine.run(f"{PREFIX}/sbin/aiocopd", "service", "--check-config", check=False)
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"


def test_service_under_systemd(machine):
    """enable --now; reports in the journal with their fields; reload up and down the block,
    and a refused reload; the watchdog fed; stop leaves no BPF program. The service runs in
    the container's PID namespace: the ids it reports are the ones systemctl shows there."""
    require_service()
    started = time.monotonic()
    port = free_port()
    demo_pid = int(show(machine, "demo.service", "MainPID"))
    entry_point = f"{DEMO}:{marker_line('unit_blocker.py', 'block')}:main"
    watchdog = machine.path("/etc/systemd/system/aiocopd.service.d/watchdog.conf")
    watchdog.parent.mkdir(parents=True, exist_ok=True)
    # a watchdog the service must feed many times over while the test runs
    watchdog.write_text("[Service]\nWatchdogSec=3s\n")
    write_dropin(machine, port, 30)
    cursor = journal_cursor(machine)
    try:
        machine.run("systemctl", "daemon-reload")
        machine.run("systemctl", "enable", "--now", "aiocopd.service", timeout=60)
        service_pid = show(machine, "aiocopd.service", "MainPID")
        assert show(machine, "aiocopd.service", "ActiveState") == "active"
        assert show(machine, "aiocopd.service", "StatusText"), "no STATUS= from the service"

        reports = wait_reports(machine, cursor)
        assert reports, ("no report in the journal within "
                         f"{REPORT_TIMEOUT} s:\n{service_entries(machine, cursor)[-10:]}")
        e = reports[0]
        assert e["AIOCOPD_SERVICE"] == "demo", e
        assert e["AIOCOPD_PID"] == str(demo_pid), e
        assert e["AIOCOPD_ENTRY_POINT"] == entry_point, e
        assert e["PRIORITY"] == PRIORITY[e["AIOCOPD_SEVERITY"]], e
        report = json.loads(e["AIOCOPD_REPORT"])
        assert report["service"] == "demo" and DEMO in report["cmdline"], report
        assert report["threshold_ms"] == 30 and report["elapsed_ms"] >= 95, report
        assert e["MESSAGE"] and "\n" not in e["MESSAGE"], e
        assert metric(port, "aiocopd_watched_processes", service="demo") == 1

        # a threshold above the 100 ms block: no more reports
        write_dropin(machine, port, 200)
        reload(machine)
        time.sleep(0.5)         # what was drained before READY=1 may still be written
        cursor = journal_cursor(machine)
        time.sleep(5)
        assert reports_after(machine, cursor) == []
        # below it again: they come back, with the new threshold
        write_dropin(machine, port, 50)
        reload(machine)
        cursor = journal_cursor(machine)
        reports = wait_reports(machine, cursor)
        assert reports and all(json.loads(r["AIOCOPD_REPORT"])["threshold_ms"] == 50
                               for r in reports), reports
        # an invalid configuration is refused, said where, and the running one kept
        machine.path(DROPIN).write_text(machine.path(DROPIN).read_text().replace(
            "threshold_ms = 50", "threshold_ms = fifty"))
        cursor = journal_cursor(machine)
        reload(machine)
        said = [x.get("MESSAGE", "") for x in service_entries(machine, cursor)]
        assert any(f"{DROPIN}:" in m for m in said), said
        assert metric(port, "aiocopd_config_reloads_total", result="error") == 1
        reports = wait_reports(machine, journal_cursor(machine))
        assert reports and json.loads(reports[0]["AIOCOPD_REPORT"])["threshold_ms"] == 50

        assert show(machine, "aiocopd.service", "MainPID") == service_pid
        assert show(machine, "aiocopd.service", "NRestarts") == "0", "restarted (watchdog?)"
        host_pid = machine.host_pid(int(service_pid))
        held = prog_ids_held_by(host_pid)
        loaded = bpf_programs()
        assert held and all(is_aiocopd_prog_name(loaded.get(i, "")) for i in held), \
            (held, loaded)
    finally:
        machine.run("systemctl", "disable", "--now", "aiocopd.service", check=False)
        machine.path(DROPIN).unlink(missing_ok=True)
        watchdog.unlink(missing_ok=True)
        machine.run("systemctl", "daemon-reload")
    assert show(machine, "aiocopd.service", "ActiveState") == "inactive"
    assert show(machine, "aiocopd.service", "Result") == "success"
    assert not (set(bpf_programs()) & held), "programs of the stopped service still loaded"
    leaked = {i: n for i, n in bpf_programs().items()
              if is_aiocopd_prog_name(n) and i not in prog_ids_held_by_anyone()}
    assert not leaked, f"aiocopd programs loaded that no process holds: {leaked}"
    print(f"service under systemd: {time.monotonic() - started:.1f} s")
