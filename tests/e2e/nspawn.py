"""A real systemd for the end-to-end tests: the Debian bookworm root tools/test-root.sh builds
(`systemd`), booted with systemd-nspawn on a copy-on-write overlay of it, so that every boot
starts from the clean cached root and leaves it untouched.

    with Overlay() as o:            # the cached root seen through an overlay, nothing booted
        make_install(o.root)        # `make install DESTDIR=...` of this tree
    with Machine() as m:            # the same, booted: systemd is PID 1 of its own namespace
        make_install(m.root)
        m.run("systemctl", "daemon-reload")

The container gets nspawn's default capabilities (which hold CAP_SYS_PTRACE and
CAP_DAC_READ_SEARCH) plus CAP_BPF and CAP_PERFMON, and may call bpf() and perf_event_open()
(nspawn's system call filter refuses them otherwise); the BPF programs loaded inside attach
to the host's kernel. It shares the host's network (the metrics endpoint is reached on the
host's loopback) and sees the host's tracefs read-only, as a host with systemd has it
mounted at boot.

Only processes started here are signalled, by PID: nspawn itself, and the container's PID 1
when nspawn does not stop it (killing a PID namespace's init ends every process in it).
"""
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from aiocopd_e2e import AIOCOPD, REPO, _build_dir_of, build_test_root, unavailable

BOOT_TIMEOUT = 60.0         # seconds from starting nspawn to "running"
HALT_TIMEOUT = 30.0         # seconds nspawn may take to halt the container on SIGTERM
TRACEFS = "/sys/kernel/tracing"


def _tools_missing():
    for tool in ("systemd-nspawn", "nsenter", "systemd-analyze"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (package systemd-container / util-linux / systemd)"
    return None


def systemd_root():
    """The cached root's path; unavailable() (a failure under CI=true) when it cannot be."""
    why = _tools_missing()
    if why:
        unavailable(why)
    try:
        return build_test_root("systemd")
    except RuntimeError as e:
        unavailable(str(e))


def _make(target, destdir, make_args):
    """`make TARGET DESTDIR=destdir` of this tree, of the aiocopd under test when this tree
    builds it (AIOCOPD=build-san/aiocopd installs that one); its output."""
    out = _build_dir_of(AIOCOPD)
    r = subprocess.run(["make", "-s", "-C", str(REPO), *([f"OUT={out}"] if out else []),
                        target, f"DESTDIR={destdir}", *make_args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"make {target} failed:\n{r.stdout}{r.stderr}"
    return r.stdout


def make_install(destdir, *make_args):
    return _make("install", destdir, make_args)


def make_uninstall(destdir, *make_args):
    return _make("uninstall", destdir, make_args)


class Overlay:
    """The cached systemd root under an overlay whose upper layer is a fresh temporary
    directory: `root` is where to read and write, `upper` holds exactly what was written."""

    def __init__(self):
        self.lower = systemd_root()
        self.dir = Path(tempfile.mkdtemp(prefix="aiocopd-root-"))
        self.upper = self.dir / "upper"
        self.root = self.dir / "root"
        self.mounted = False

    def __enter__(self):
        work = self.dir / "work"
        for d in (self.upper, work, self.root):
            d.mkdir()
        r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                            f"lowerdir={self.lower},upperdir={self.upper},workdir={work}",
                            str(self.root)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            shutil.rmtree(self.dir, ignore_errors=True)
            unavailable(f"cannot mount an overlay of {self.lower}: {r.stderr.strip()}")
        self.mounted = True
        return self

    def written(self):
        """What the upper layer holds that is not a directory: files written (or deleted
        from the lower root, as overlayfs' whiteouts) since the overlay was mounted."""
        return sorted("/" + str(p.relative_to(self.upper)) for p in self.upper.rglob("*")
                      if not p.is_dir() or p.is_symlink())

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", str(self.root)], check=True, timeout=60)
            self.mounted = False
        shutil.rmtree(self.dir, ignore_errors=True)


def _children(pid):
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


def _comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _nspid(pid):
    """NSpid of a process: its ids from the host's namespace inwards, or []."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(v) for v in line.split()[1:]]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    return []


class Machine(Overlay):
    """The overlay booted with systemd-nspawn. `leader` is the host's PID of its PID 1;
    run() runs a command inside (every namespace of the container, as `machinectl shell`
    would); host_pid() turns the container's ids into the host's."""

    def __init__(self, capabilities=("CAP_BPF", "CAP_PERFMON")):
        super().__init__()
        self.name = f"aiocopd-test-{os.getpid()}-{os.urandom(3).hex()}"    # [a-z0-9-]
        self.capabilities = capabilities
        self.nspawn = None
        self.leader = None
        self._leader_fd = None      # a pidfd: the leader's id may be reused once it is gone
        self.boot_seconds = None
        self.console = self.dir / "console.log"

    def __enter__(self):
        super().__enter__()
        try:
            self._boot()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _boot(self):
        # the host's tracefs: systemd mounts it at boot on a host, but a container's /sys is
        # its own, and the service may not mount it (no CAP_SYS_ADMIN)
        if not os.path.isdir(f"{TRACEFS}/events"):
            subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True, timeout=30)
        started = time.monotonic()
        with open(self.console, "wb") as console:
            self.nspawn = subprocess.Popen(
                ["systemd-nspawn", "-D", str(self.root), f"--machine={self.name}",
                 "--register=no", "--keep-unit", "--boot", "--console=pipe",
                 f"--capability={','.join(self.capabilities)}",
                 "--system-call-filter=bpf perf_event_open", f"--bind-ro={TRACEFS}"],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT)
        deadline = started + BOOT_TIMEOUT
        while self.leader is None:
            # nspawn's child whose innermost id is 1, once it has become systemd (before,
            # it is nspawn still setting the container up)
            for child in _children(self.nspawn.pid):
                ids = _nspid(child)
                if len(ids) >= 2 and ids[-1] == 1 and _comm(child) == "systemd":
                    self._leader_fd = os.pidfd_open(child)
                    self.leader = child
            if self.leader is None:
                assert self.nspawn.poll() is None, f"systemd-nspawn exited:\n{self.log()}"
                assert time.monotonic() < deadline, f"no container init:\n{self.log()}"
                time.sleep(0.05)
        # no answer, or "offline", until PID 1 listens on its socket: ask again until then
        state = ""
        while state in ("", "offline") and time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", "--wait", check=False,
                             timeout=max(1.0, deadline - time.monotonic())).stdout.strip()
            if state in ("", "offline"):
                time.sleep(0.1)
        if state != "running":
            failed = self.run("systemctl", "--failed", "--no-pager", check=False).stdout
            raise AssertionError(f"the container is {state!r}, not running:\n{failed}\n"
                                 f"{self.log()}")
        self.boot_seconds = time.monotonic() - started

    def log(self):
        return self.console.read_text(errors="replace")[-4000:] if self.console.exists() \
            else ""

    def run(self, *argv, check=True, timeout=60.0, input=None):
        """argv inside the container; a CompletedProcess with text stdout and stderr."""
        r = subprocess.run(["nsenter", "-t", str(self.leader), "-a", *map(str, argv)],
                           capture_output=True, text=True, timeout=timeout, input=input)
        if check:
            assert r.returncode == 0, (f"{' '.join(map(str, argv))} exited {r.returncode} "
                                       f"in the container:\n{r.stdout}{r.stderr}")
        return r

    def path(self, inside):
        """The host's path of a path inside the container."""
        return self.root / str(inside).lstrip("/")

    def host_pid(self, pid):
        """The host's id of the container's process pid, or None."""
        ours = os.stat(f"/proc/{self.leader}/ns/pid").st_ino
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            ids = _nspid(entry)
            try:
                same_ns = os.stat(f"/proc/{entry}/ns/pid").st_ino == ours
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            if same_ns and len(ids) >= 2 and ids[-1] == pid:
                return int(entry)
        return None

    def halt(self):
        """Powers the container off (nspawn's SIGTERM: a clean halt), then makes sure nothing
        of it is left: its init killed if nspawn could not stop it, nspawn reaped."""
        if self.nspawn is None:
            return
        if self.nspawn.poll() is None:
            self.nspawn.send_signal(signal.SIGTERM)
            try:
                self.nspawn.wait(timeout=HALT_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        if self._leader_fd is not None and not self.leader_exited(0):
            signal.pidfd_send_signal(self._leader_fd, signal.SIGKILL)
        if self.nspawn.poll() is None:
            self.nspawn.kill()
        self.nspawn.wait(timeout=HALT_TIMEOUT)
        self.nspawn = None
        # nspawn's own directory for this machine, which it leaves behind (empty) when it
        # was stopped early, or when /run is not a tmpfs
        try:
            os.rmdir(f"/run/systemd/nspawn/propagate/{self.name}")
        except OSError:
            pass

    def leader_exited(self, timeout):
        """Whether the container's init has exited (and with it every process of its PID
        namespace), waiting up to timeout seconds."""
        if self._leader_fd is None:
            return True
        return bool(select.select([self._leader_fd], [], [], timeout)[0])

    def __exit__(self, *exc):
        try:
            self.halt()
        finally:
            if self._leader_fd is not None:
                os.close(self._leader_fd)
                self._leader_fd = None
            super().__exit__(*exc)
