"""The service's packaging: `make install` and `make uninstall` into a Debian root with
systemd (the cached bookworm root of tools/test-root.sh, under an overlay whose upper layer
is exactly what they wrote), the unit accepted by `systemd-analyze verify` with no output at
all, and its exposure as `systemd-analyze security` scores it.
"""
import os
import re
import subprocess

import pytest

from aiocopd_e2e import REPO
from nspawn import Overlay, make_install, make_uninstall

UNIT = "aiocopd.service"
UNIT_DIR = "/usr/lib/systemd/system"        # /lib/systemd/system, /lib being /usr/lib there
CONF = "/etc/aiocopd/aiocopd.conf"
# README "The unit and its privileges": the smallest set measured to work (tests/e2e/test_systemd.py
# drops each in turn); a change here is a change of the documented contract
CAPABILITIES = {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"}
MAX_EXPOSURE = 3.0


def installed_files(prefix):
    return sorted([f"{prefix}/sbin/aiocopd", f"{prefix}/share/man/man8/aiocopd.8",
                   f"{prefix}/share/man/man5/aiocopd.conf.5",
                   f"{prefix}/share/doc/aiocopd/README.md", f"{UNIT_DIR}/{UNIT}", CONF])


def unit_keys(text):
    """{key: [values]} of a unit file's assignments."""
    keys = {}
    for line in text.splitlines():
        m = re.fullmatch(r"([A-Za-z]+)=(.*)", line.strip())
        if m:
            keys.setdefault(m[1], []).append(m[2])
    return keys


def verify(root, prefix, unit=UNIT):
    """`systemd-analyze verify` of a unit of root, the man pages it names looked up where
    make put them: (exit status, everything it printed)."""
    env = dict(os.environ, MANPATH=f"{root}{prefix}/share/man")
    r = subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit],
                       capture_output=True, text=True, timeout=120, env=env)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture
def overlay():
    with Overlay() as o:
        yield o


@pytest.mark.parametrize("prefix", ["/usr/local", "/usr", "/opt/aiocopd"])
def test_install_writes_a_unit_that_verify_accepts_silently(overlay, prefix):
    make_install(overlay.root, f"PREFIX={prefix}")
    assert overlay.written() == installed_files(prefix), "make install wrote other files"
    unit = (overlay.root / UNIT_DIR.lstrip("/") / UNIT).read_text()
    assert unit_keys(unit)["ExecStart"] == [f"{prefix}/sbin/aiocopd service"]
    assert (overlay.root / CONF.lstrip("/")).read_text() == \
        (REPO / "tools" / "aiocopd.conf").read_text()
    assert (overlay.root / "etc/aiocopd/aiocopd.conf.d").is_dir()
    rc, out = verify(overlay.root, prefix)
    assert rc == 0 and out == "", f"systemd-analyze verify (exit {rc}) said:\n{out}"


def test_verify_does_print_what_is_wrong(overlay):
    """The check above can fail: a misspelt key and a missing binary are printed."""
    make_install(overlay.root)
    good = overlay.root / UNIT_DIR.lstrip("/") / UNIT
    bad = good.with_name("aiocopd-bad.service")
    bad.write_text(good.read_text().replace("ProtectSystem=", "ProtectSystm=")
                   .replace("/usr/local/sbin/aiocopd", "/usr/local/sbin/aiocopd-missing"))
    rc, out = verify(overlay.root, "/usr/local", bad.name)
    assert "ProtectSystm" in out and "aiocopd-missing" in out, out


def test_security_exposure_and_capabilities(overlay):
    make_install(overlay.root)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true",
                        f"--root={overlay.root}", UNIT],
                       capture_output=True, text=True, timeout=120)
    m = re.search(rf"Overall exposure level for {re.escape(UNIT)}: (\d+\.\d+) (\w+)", r.stdout)
    assert r.returncode == 0 and m, f"no score (exit {r.returncode}):\n{r.stdout}{r.stderr}"
    assert float(m[1]) <= MAX_EXPOSURE, f"exposure {m[1]} {m[2]} > {MAX_EXPOSURE}:\n{r.stdout}"
    keys = unit_keys((overlay.root / UNIT_DIR.lstrip("/") / UNIT).read_text())
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        assert [set(v.split()) for v in keys[key]] == [CAPABILITIES], (key, keys[key])
    assert keys["Type"] == ["notify"] and keys["NoNewPrivileges"] == ["yes"], keys


def test_uninstall_removes_everything_install_wrote(overlay):
    make_install(overlay.root)
    make_uninstall(overlay.root)
    assert overlay.written() == []
    assert not (overlay.root / "etc/aiocopd").exists()


def test_an_edited_configuration_is_neither_replaced_nor_removed(overlay):
    make_install(overlay.root)
    conf = overlay.root / CONF.lstrip("/")
    edited = conf.read_text() + "\n[watch \"orders\"]\nunit = orders.service\n"
    conf.write_text(edited)
    dropin = overlay.root / "etc/aiocopd/aiocopd.conf.d/local.conf"
    dropin.write_text("[service]\nthreshold_ms = 50\n")
    out = make_install(overlay.root)
    assert conf.read_text() == edited and "keeping the existing" in out, out
    out = make_uninstall(overlay.root)
    assert "keeping" in out and "changed since it was installed" in out, out
    assert overlay.written() == [CONF, "/etc/aiocopd/aiocopd.conf.d/local.conf"]
    assert conf.read_text() == edited
