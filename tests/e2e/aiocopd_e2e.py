"""Helpers of the end-to-end tests of aiocopd: real targets, the real binary, real BPF.

Every test starts its own target program (tests/e2e/programs/*.py) under one of the two
interpreters, waits until it prints ``ready`` (its asyncio loop runs), starts aiocopd with
``--json -d N`` against it, waits for the ``attached`` line on stderr, lets it run for N seconds,
waits for it to exit, then checks its exit status and every JSON line it printed.

Run from the repository root as root:   /usr/bin/python3 -m pytest -q tests/e2e
Environment: AIOCOPD=path overrides build/aiocopd (`make sanitize` points it at build-san/aiocopd);
CI=true turns "not root" skips into failures. A test fails when an aiocopd it ran printed a
sanitizer report or exited with the sanitizers' status (see SANITIZER_REPORT, SANITIZER_EXITS).

Only processes started here are ever signalled, and only by their PID.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROGRAMS = Path(__file__).resolve().parent / "programs"
AIOCOPD = os.environ.get("AIOCOPD", str(REPO / "build" / "aiocopd"))

# The Debian sid root tools/test-root.sh builds (once per machine): CPython 3.14 and 3.15,
# which need sid's libc
TEST_ROOTS = Path(os.environ.get("AIOCOPD_TEST_CACHE", "/var/cache/aiocopd-test"))
SID = TEST_ROOTS / "sid"


class Interpreter:
    """A Python to start targets with: its path, and what running it needs (an argv prefix,
    environment variables). Only `path` names the interpreter aiocopd should find."""

    def __init__(self, kind, path, prefix=(), env=None, root=None, host_file=None):
        self.kind = kind
        self.path = str(path)
        self.host_file = host_file  # the file path names, when path is inside a root
        self.prefix = [str(a) for a in prefix]
        self.env = dict(env or {})
        self.root = root            # the tools/test-root.sh root it lives in, if any
        self._version = None

    @property
    def executable(self):
        """The file its processes' /proc/PID/exe is (the loader, when a prefix names one)."""
        return self.host_file or (self.prefix[0] if self.prefix else self.path)

    @property
    def argv(self):
        """The command that starts it: add the interpreter's own arguments after it."""
        return [*self.prefix, self.path]

    def environ(self, extra=None):
        """os.environ with what this interpreter needs, then extra, on top."""
        env = dict(os.environ)
        env.update(self.env)
        env.update(extra or {})
        return env

    def inside_root(self):
        """The same interpreter started inside its root (bwrap --bind ROOT /, chroot ROOT), as
        a container starts it: by its path there, with nothing of the host's."""
        root = build_test_root(self.root)
        return Interpreter(self.kind, "/" + os.path.relpath(self.path, root),
                           host_file=self.path)

    @property
    def version(self):
        if self._version is None:
            self._version = subprocess.run(
                [*self.argv, "-c", "import platform; print(platform.python_version())"],
                check=True, capture_output=True, text=True, timeout=30,
                env=self.environ()).stdout.strip()
        return self._version

    def __repr__(self):
        return f"Interpreter({self.kind}, {' '.join(self.argv)})"


def in_sid(version):
    """sid's python<version>, run on the host through sid's own dynamic loader and libraries
    (the process's executable is then the loader; the interpreter is the file it maps)."""
    libs = f"{SID}/lib/x86_64-linux-gnu:{SID}/usr/lib/x86_64-linux-gnu"
    return Interpreter("py3" + version.split(".")[1], SID / "usr" / "bin" / f"python{version}",
                       prefix=[SID / "lib64" / "ld-linux-x86-64.so.2", "--library-path", libs],
                       env={"PYTHONHOME": f"{SID}/usr"}, root="sid")


INTERPRETERS = {i.kind: i for i in [
    # Debian's build: stripped, LTO, non-PIE executable with the runtime linked in
    Interpreter("debian", "/usr/bin/python3.11"),
    # pyenv's build: the runtime lives in libpython3.11.so
    Interpreter("pyenv", "/root/.pyenv/versions/3.11.7/bin/python3.11"),
    # pyenv's 3.10 (frame objects, no Py_Version), 3.12 and 3.13 (libpython3.X.so); 3.13
    # also carries _Py_DebugOffsets
    Interpreter("py310", "/root/.pyenv/versions/3.10.13/bin/python3.10"),
    Interpreter("py312", "/root/.pyenv/versions/3.12.1/bin/python3.12"),
    Interpreter("py313", "/root/.pyenv/versions/3.13.0/bin/python3.13"),
    # Debian sid's stripped 3.14 and 3.15 (their own offsets-table formats, tagged frame
    # references), with uvloop on both
    in_sid("3.14"),
    in_sid("3.15"),
]}

# Versions aiocopd refuses, by name (pyenv's builds)
REFUSED = {
    "py27": "/root/.pyenv/versions/2.7.18/bin/python2.7",
    "py36": "/root/.pyenv/versions/3.6.15/bin/python3.6",
    "py39": "/root/.pyenv/versions/3.9.18/bin/python3.9",
}

ATTACH_TIMEOUT = 20.0      # seconds from starting aiocopd to its "attached" line
READY_TIMEOUT = 15.0       # seconds from starting a target to its "ready" line
EXIT_TIMEOUT = 40.0        # seconds aiocopd may take to exit once its duration is over
CATEGORIES = {"sleep", "file", "network", "dns", "subprocess", "database", "lock", "other"}
LEVELS = {"low", "medium", "high"}
REPORT_KEYS = {"type", "ts", "pid", "tid", "elapsed_ms", "threshold_ms", "exceeded_threshold",
               "severity_score", "severity_level", "reason", "on_cpu_ms", "off_cpu_ms", "task",
               "callback", "blocking_events", "cpu_samples", "gc_ms", "omitted_operations",
               "omitted_ms"}
CPU_SAMPLE_KEYS = {"trace", "entry_point", "trace_truncated", "count"}
# documented beyond SPEC section 3 (README "Two tiers of probing"): how the callback was bounded
EXTRA_REPORT_KEYS = {"attribution": {"iteration", "callback"}}
# SPEC section 3: the ids a target in its own PID namespace sees, only when they differ
NS_REPORT_KEYS = {"ns_pid", "ns_tid"}
EVENT_KEYS = {"event", "category", "severity", "duration_ms", "syscall", "entry_point", "trace",
              "trace_truncated"}
# a frame: path:line:function, the line "?" when it cannot be known (target memory gone, corrupt)
FRAME = re.compile(r".+:(\d+|\?):.+")


def in_ci():
    return os.environ.get("CI", "").strip().lower() == "true"


# ---- privileges and prerequisites ----------------------------------------------------------

NOT_ROOT = "aiocopd end-to-end tests need root (BPF programs, perf events, ptrace)"
NOBODY = 65534


def _caps_arg(caps):
    return ",".join(["-all"] + [f"+{c}" for c in caps])


def as_root_with(caps):
    """argv prefix: root keeping only caps (its bounding set is all an exec can give it)."""
    return ["setpriv", f"--bounding-set={_caps_arg(caps)}", "--inh-caps=-all",
            "--ambient-caps=-all", "--"]


def as_nobody_with(caps):
    """argv prefix: user nobody holding caps as ambient capabilities, kept across exec."""
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            f"--inh-caps={_caps_arg(caps)}", f"--ambient-caps={_caps_arg(caps)}", "--"]


_binary_problem = []


def _build_dir_of(binary):
    """The make OUT directory (relative to REPO) that builds binary, or None when the binary
    is not one this tree builds (an installed aiocopd, say)."""
    path = Path(binary).resolve()
    if path.name != "aiocopd" or path.parent.parent != REPO:
        return None
    return path.parent.name


def require_binary():
    """The aiocopd under test must exist and, when this tree builds it (build/aiocopd, or
    another OUT such as build-san/aiocopd), be up to date with the sources."""
    if not _binary_problem:
        problem = ""
        out = _build_dir_of(AIOCOPD)
        if not os.access(AIOCOPD, os.X_OK):
            problem = f"{AIOCOPD} is missing or not executable: run `make` first"
        elif out is not None:
            try:
                stale = subprocess.run(["make", "-q", "-C", str(REPO), f"OUT={out}",
                                        f"{out}/aiocopd"], timeout=60,
                                       capture_output=True).returncode == 1
            except (OSError, subprocess.TimeoutExpired):
                stale = False
            if stale:
                problem = f"{AIOCOPD} is older than its sources: run `make` first"
        _binary_problem.append(problem)
    if _binary_problem[0]:
        pytest.fail(_binary_problem[0], pytrace=False)


# ---- sanitizer reports -----------------------------------------------------------------------

# What ASan, LSan and UBSan print when they find something: it fails the test of the aiocopd
# that printed it.
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Undefined(Behavior)?)Sanitizer|"
                              r"SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer|"
                              r"Sanitizer has encountered a fatal error|"
                              r"\bruntime error: ")
# The exit statuses the sanitizers were told to use (`make sanitize` sets exitcode= in their
# options): only then is such a status theirs rather than, say, an exec'd command's.
SANITIZER_EXITS = {int(m) for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS")
                   for m in re.findall(r"(?:^|:)exitcode=(\d+)", os.environ.get(var, ""))}


def sanitizer_problem(proc):
    """Why proc (an aiocopd) shows a sanitizer report, or None."""
    if any(SANITIZER_REPORT.search(line) for line in proc.stderr):
        return f"sanitizer report from {proc.describe()}\n  " + "\n  ".join(proc.stderr)
    if proc.popen.poll() in SANITIZER_EXITS:
        return f"aiocopd exited {proc.popen.poll()}, the sanitizers' status:\n{proc.describe()}"
    return None


_roots = {}


def build_test_root(name):
    """The path of a tools/test-root.sh root, built on first use (once per machine)."""
    if name not in _roots:
        r = subprocess.run([str(REPO / "tools" / "test-root.sh"), name], capture_output=True,
                           text=True, timeout=900)
        _roots[name] = r.stdout.strip() if r.returncode == 0 else RuntimeError(
            f"tools/test-root.sh {name} failed:\n{r.stderr}")
    if isinstance(_roots[name], Exception):
        raise _roots[name]
    return _roots[name]


def unavailable(why):
    """Skips the test for why (a missing interpreter or tool); under CI=true fails it."""
    if in_ci():
        pytest.fail(f"{why}; CI=true, so this is a failure, not a skip", pytrace=False)
    pytest.skip(why)


def missing(interp):
    """Why interp cannot run here, or None. Under CI=true the caller fails on it."""
    if interp.root:
        try:
            build_test_root(interp.root)
        except RuntimeError as e:
            return str(e)
    return None if os.path.exists(interp.path) else f"{interp.path} is not installed"


# ---- processes -----------------------------------------------------------------------------

class Proc:
    """A child process whose stdout and stderr lines are collected, with arrival times."""

    def __init__(self, argv, env=None):
        self.argv = [str(a) for a in argv]
        self.started_wall = time.time()
        self.started = time.monotonic()
        self.popen = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.pid = self.popen.pid
        self.exited_at = None
        self._cond = threading.Condition()
        self._lines = {"out": [], "err": []}
        self._eof = {"out": False, "err": False}
        self._readers = [threading.Thread(target=self._read, args=(k, s), daemon=True)
                         for k, s in (("out", self.popen.stdout), ("err", self.popen.stderr))]
        for t in self._readers:
            t.start()

    def _read(self, key, stream):
        for raw in iter(stream.readline, b""):
            with self._cond:
                self._lines[key].append((time.monotonic(), raw))
                self._cond.notify_all()
        with self._cond:
            self._eof[key] = True
            self._cond.notify_all()

    def raw_lines(self, key):
        with self._cond:
            return [raw for _, raw in self._lines[key]]

    def lines(self, key):
        return [raw.decode("utf-8", "replace").rstrip("\n") for raw in self.raw_lines(key)]

    @property
    def stdout(self):
        return self.lines("out")

    @property
    def stderr(self):
        return self.lines("err")

    def wait_line(self, key, predicate, timeout):
        """First line of `key` satisfying predicate as (arrival time, text), or None."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                entries = self._lines[key]
                for when, raw in entries[seen:]:
                    text = raw.decode("utf-8", "replace").rstrip("\n")
                    if predicate(text):
                        return when, text
                seen = len(entries)
                if self._eof[key]:
                    return None
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def wait(self, timeout):
        """Exit status, or None if still running after timeout seconds."""
        try:
            rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.exited_at is None:
            self.exited_at = time.monotonic()
        for t in self._readers:
            t.join(timeout=5)
        return rc

    def running(self):
        return self.popen.poll() is None

    def signal(self, sig):
        if self.popen.poll() is None:
            os.kill(self.pid, sig)

    def stop(self, timeout=60):
        """SIGKILL (by PID) if still running, then reap. A target started by a launcher
        (Harness.target) goes first, then the launcher."""
        # (never pid 0: that would be our own process group)
        if 0 < self.pid != self.popen.pid and self.popen.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.popen.poll() is None:
            try:
                self.popen.kill()
            except ProcessLookupError:
                pass
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        for t in self._readers:
            t.join(timeout=5)

    def describe(self):
        return (f"$ {' '.join(self.argv)}\n  rc={self.popen.poll()}\n"
                f"  stderr: {self.stderr!r}\n  stdout ({len(self.stdout)} lines): "
                f"{self.stdout[:3]!r}{' ...' if len(self.stdout) > 3 else ''}")


def marker_line(program, tag):
    """Line number of the unique `# MARK: tag` comment in a target program."""
    text = (PROGRAMS / program).read_text().splitlines()
    hits = [i + 1 for i, line in enumerate(text) if line.rstrip().endswith(f"# MARK: {tag}")]
    assert len(hits) == 1, f"{program}: expected one '# MARK: {tag}' line, found {hits}"
    return hits[0]


def frame_of(program, tag, function):
    """The `path:line:function` frame aiocopd should print for a marked line."""
    return f"{PROGRAMS / program}:{marker_line(program, tag)}:{function}"


# ---- reports -------------------------------------------------------------------------------

def is_stdlib(path):
    return bool(re.search(r"/lib/python3\.\d+/", path)) and "-packages/" not in path \
        or path.startswith("<frozen ")


def is_sleep_of(name, seconds_text):
    """Whether an event names time.sleep(seconds_text): as the call wrote it, or (when aiocopd
    attached in the middle of the sleep and never saw its timeout) as long as it lasted, one
    more digit of milliseconds."""
    return re.fullmatch(rf"time\.sleep\({re.escape(seconds_text)}\d?\)", name) is not None


def machine_is_busy():
    """Whether other work wants more CPUs than there are: a CPU-bound callback is then
    preempted for any share of its time, and an on-CPU share says nothing about aiocopd."""
    return os.getloadavg()[0] > (os.cpu_count() or 1) + 1


def expected_level(r):
    """SPEC 4: the score's level, raised by a stall of 2x (medium) or 4x (high) the threshold."""
    order = ["low", "medium", "high"]
    score = r["severity_score"]
    level = 2 if score >= 50 else 1 if score >= 10 else 0
    if r["elapsed_ms"] >= 4 * r["threshold_ms"]:
        level = 2
    elif r["elapsed_ms"] >= 2 * r["threshold_ms"]:
        level = max(level, 1)
    return order[level]


def application_frame(frames):
    """SPEC section 3 entry_point (no --app-path): the innermost frame neither in the
    standard library nor installed as a package; else the innermost outside the standard
    library; else the innermost."""
    paths = [(f, f.rsplit(":", 2)[0]) for f in frames]
    outside = [f for f, path in paths if not is_stdlib(path) and path != "?"]
    own = [f for f in outside if "/site-packages/" not in f and "/dist-packages/" not in f]
    return (own or outside or frames)[0]


def verdict(r):
    """What SPEC 4 says must be the same for the same code, first report or later: the events
    (kind, weight, where), the score and the level."""
    # (the event's text is left out: 3.10's unarmed record names time.sleep by the
    # pselect6 it measured, 0.062 for 0.06, a naming matter of the event, not the verdict)
    return ([(e["category"], e["severity"], e["entry_point"]) for e in r["blocking_events"]],
            r["severity_score"], r["severity_level"])


ITERATION_KEYS = {"type", "ts", "pid", "tid", "elapsed_ms", "threshold_ms", "callbacks", "top"}
TOP_KEYS = {"task", "callback", "entry_point", "ms"}


def check_iteration(r, threshold_ms):
    """SPEC section 3: a loop iteration that ran the threshold with none of its callbacks."""
    assert set(r) - NS_REPORT_KEYS == ITERATION_KEYS, r
    assert r["elapsed_ms"] >= threshold_ms - 0.001 and r["threshold_ms"] == threshold_ms, r
    assert isinstance(r["callbacks"], int) and r["callbacks"] >= 2, r
    # (armed, only the callbacks BPF could name are listed: maybe none of a lag of tiny ones)
    assert len(r["top"]) <= 3, r
    assert [t["ms"] for t in r["top"]] == sorted((t["ms"] for t in r["top"]), reverse=True), r
    for t in r["top"]:
        assert set(t) == TOP_KEYS and 0 <= t["ms"] <= r["elapsed_ms"] + 0.01, r
        assert t["task"] is None or set(t["task"]) == {"name", "coro"}, r


def check_report(r, threshold_ms, trace_depth=20, report_all=False):
    """What SPEC sections 3 and 4 promise about every report, whatever the scenario."""
    missing = REPORT_KEYS - set(r)
    unknown = set(r) - REPORT_KEYS - set(EXTRA_REPORT_KEYS) - NS_REPORT_KEYS
    assert not missing and not unknown, f"report keys: missing {missing}, unknown {unknown}: {r}"
    for key, allowed in EXTRA_REPORT_KEYS.items():
        assert r.get(key, next(iter(allowed))) in allowed, r
    assert r["type"] == "slow_task"
    for key in NS_REPORT_KEYS & set(r):
        assert isinstance(r[key], int) and r[key] >= 1, r
    assert 0 <= r["gc_ms"] <= r["elapsed_ms"], r
    for s in r["cpu_samples"]:
        assert set(s) == CPU_SAMPLE_KEYS and s["count"] >= 1, r
        frames = s["trace"].split(" <- ")
        assert len(frames) <= trace_depth and s["entry_point"] in frames, r
    assert r["threshold_ms"] == pytest.approx(threshold_ms)
    assert r["elapsed_ms"] >= 0 and r["on_cpu_ms"] >= 0 and r["off_cpu_ms"] >= 0
    assert isinstance(r["omitted_operations"], int) and r["omitted_operations"] >= 0, r
    assert 0 <= r["omitted_ms"] <= r["elapsed_ms"] + 0.01, r
    # sleeping is off CPU: the on-CPU share leaves room for the sleeps
    slept = sum(e["duration_ms"] for e in r["blocking_events"] if e["category"] == "sleep")
    assert r["on_cpu_ms"] <= max(0.0, r["elapsed_ms"] - slept) + 0.01, r
    assert r["on_cpu_ms"] + r["off_cpu_ms"] == pytest.approx(r["elapsed_ms"], abs=0.01)
    if abs(r["elapsed_ms"] - threshold_ms) >= 0.001:     # (elapsed_ms is rounded)
        assert r["exceeded_threshold"] == (r["elapsed_ms"] >= threshold_ms), r
    if not report_all:
        assert r["exceeded_threshold"], f"a fast callback reported without --all: {r}"
    events = r["blocking_events"]
    if not r["exceeded_threshold"]:
        assert events, f"a fast callback without blocking events was reported: {r}"
    # where the time went (SPEC section 3); the shares are rounded, so ties may go either way
    if abs(2 * r["gc_ms"] - r["elapsed_ms"]) > 0.01 and 2 * r["gc_ms"] > r["elapsed_ms"]:
        assert r["reason"] == "gc", r
    elif abs(2 * r["gc_ms"] - r["elapsed_ms"]) > 0.01 and events:
        assert r["reason"] == "io_blocking", r
    elif not events and abs(r["on_cpu_ms"] - r["off_cpu_ms"]) > 0.01:
        assert (r["reason"] == "cpu_blocking") == (r["on_cpu_ms"] > r["off_cpu_ms"]) or \
            r["reason"] == "gc", r
    assert r["severity_score"] == sum(e["severity"] for e in events[:50]), r
    assert r["severity_level"] == expected_level(r), r
    if r["task"] is not None:
        assert set(r["task"]) == {"name", "coro"}, r["task"]
        assert r["callback"] in ("Task.__step", "Task.__wakeup"), r
    assert isinstance(r["callback"], str) and r["callback"], r
    for e in events:
        assert set(e) == EVENT_KEYS, f"event keys differ from SPEC: {sorted(set(e) ^ EVENT_KEYS)}"
        assert e["category"] in CATEGORIES, e
        assert e["severity"] in (0, 1, 10, 50), e
        assert e["duration_ms"] >= 0, e
        frames = e["trace"].split(" <- ") if e["trace"] else []
        assert len(frames) <= trace_depth, e
        for f in frames:
            assert FRAME.fullmatch(f), f"frame is not path:line:function: {f!r}"
            line = f.rsplit(":", 2)[1]
            assert line == "?" or int(line) > 0, f"a line that cannot be one: {f!r}"
        assert isinstance(e["trace_truncated"], bool), e
        if frames:
            assert e["entry_point"] == application_frame(frames), e


class MonitorRun:
    def __init__(self, proc, rc, attached, options, threshold_ms, trace_depth):
        self.proc = proc
        self.rc = rc
        self.attached = attached
        self.options = options
        self.threshold_ms = threshold_ms
        self.trace_depth = trace_depth
        self.stderr = proc.stderr
        self.iterations = []    # slow_iteration objects: the loop's lag, no callback to blame
        self.reports = self._parse()

    def _parse(self):
        reports = []
        for raw in self.proc.raw_lines("out"):
            try:
                text = raw.decode("utf-8")
                obj = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                pytest.fail(f"aiocopd --json printed a line that is not JSON ({e}): {raw!r}",
                            pytrace=False)
            assert isinstance(obj, dict), f"JSON line is not an object: {text}"
            lag = obj.get("type") == "slow_iteration"
            if "--json" in self.options:
                if lag:
                    check_iteration(obj, self.threshold_ms)
                else:
                    check_report(obj, self.threshold_ms, self.trace_depth,
                                 "--all" in self.options)
                # nothing is reported from before the attached line (1 ms clock slack)
                assert obj["ts"] >= self.proc.started_wall - 0.001, obj
            (self.iterations if lag else reports).append(obj)
        return reports

    def for_task(self, name, coro):
        """Reports of the task `name` running coroutine `coro`. A report attributed from a
        loop iteration (before the target is armed) may not know the name: "?"."""
        return [r for r in self.reports if r["task"] and r["task"]["coro"] == coro and
                (r["task"]["name"] == name or
                 (r["task"]["name"] == "?" and r.get("attribution") == "iteration"))]

    def for_callback(self, name):
        return [r for r in self.reports if r["callback"] == name]

    def describe(self):
        head = "\n".join(json.dumps(r) for r in self.reports[:4])
        return (f"{self.proc.describe()}\n  {len(self.reports)} report(s); first ones:\n{head}")


class Harness:
    """Starts targets and monitors; kills whatever is still running at teardown."""

    def __init__(self):
        self.procs = []

    def spawn(self, argv, env=None):
        p = Proc(argv, env=env)
        self.procs.append(p)
        return p

    def aiocopd_runs(self):
        """The processes that ran the aiocopd under test (directly or through a wrapper)."""
        return [p for p in self.procs if AIOCOPD in p.argv]

    def target(self, python, program, *args, env=None, ready="ready", launcher=(),
               program_dir=PROGRAMS):
        """Starts a target program and waits for its `ready` line (or another given line).

        launcher: an argv prefix that starts the interpreter in a container or chroot (bwrap,
        chroot); the Proc's pid is then the interpreter's own, found below the launcher.
        program_dir: where the target finds the programs (the path inside its root)."""
        p = self.spawn([*launcher, *python.argv, "-u", Path(program_dir) / program, *args],
                       env=python.environ(env))
        if ready and p.wait_line("out", lambda l: l == ready, READY_TIMEOUT) is None:
            p.stop()
            pytest.fail(f"target never printed {ready!r}:\n{p.describe()}", pytrace=False)
        if launcher:
            found = interpreter_below(p.popen.pid, python.executable)
            assert found, f"no {python.executable} process below the launcher:\n{p.describe()}"
            p.pid = found
        return p

    def aiocopd(self, *args, env=None, prefix=()):
        """Starts aiocopd with args; prefix: an argv prefix (nsenter, setpriv)."""
        full_env = dict(os.environ)
        full_env.update(env or {})
        return self.spawn([*prefix, AIOCOPD, *args], env=full_env)

    def monitor(self, target, *options, duration=1.5, env=None, stop_when=None,
                stop_signal=signal.SIGTERM, exit_timeout=EXIT_TIMEOUT, prefix=()):
        """Runs `aiocopd -p PID --json options... -d duration` to its end (after prefix).

        stop_when(proc, attached_at) -> bool: checked every 0.1 s; once it holds, aiocopd gets
        stop_signal instead of waiting for the duration to end.
        """
        options = ("--json",) + tuple(str(o) for o in options)
        argv = ["-p", str(target.pid), *options, "-d", str(duration)]
        p = self.aiocopd(*argv, env=env, prefix=prefix)
        attached = p.wait_line("err", lambda l: "attached" in l, ATTACH_TIMEOUT)
        if attached is None:
            rc = p.wait(timeout=1)
            pytest.fail(f"aiocopd did not attach within {ATTACH_TIMEOUT}s (rc={rc}):\n"
                        f"{p.describe()}", pytrace=False)
        if stop_when is not None:
            end = attached[0] + duration
            while time.monotonic() < end and p.running() and not stop_when(p, attached[0]):
                time.sleep(0.1)
            p.signal(stop_signal)
        rc = p.wait(timeout=duration + exit_timeout)
        if rc is None:
            p.stop()
            pytest.fail(f"aiocopd -d {duration} still running {exit_timeout}s after its duration"
                        f":\n{p.describe()}", pytrace=False)
        threshold, depth = 30.0, 20
        for flag, value in zip(options, options[1:] + ("",)):
            if flag in ("-t", "--threshold-ms"):
                threshold = float(value)
            elif flag == "--trace-depth":
                depth = int(value)
        return MonitorRun(p, rc, attached[1], options, threshold, depth)

    def watch(self, python, program, *options, args=(), target_env=None, **monitor_kw):
        """Starts `program` under `python`, then runs aiocopd on it: (target, MonitorRun)."""
        target = self.target(python, program, *args, env=target_env)
        return target, self.monitor(target, *options, **monitor_kw)

    def cleanup(self):
        """Stops everything, then fails if an aiocopd printed a sanitizer report."""
        for p in reversed(self.procs):
            p.stop()
        problems = [m for m in map(sanitizer_problem, self.aiocopd_runs()) if m]
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def _parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def interpreter_below(ancestor, path):
    """PID of the process below `ancestor` (or itself) running the file `path`, or 0. The file
    is matched by device and inode: in a chroot or container its name differs."""
    want = os.stat(path)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (want.st_dev, want.st_ino):
            continue
        up = pid
        for _ in range(64):
            if up == ancestor:
                return pid
            up = _parent_of(up)
            if up <= 1:
                break
    return 0


def available_interpreters():
    return [i for i in INTERPRETERS.values() if missing(i) is None]


def run_for_each_interpreter(fn, parallel=2, kinds=None):
    """Runs fn(harness, interpreter) for every installed interpreter (of kinds, if given) at
    the same time, each in its own thread with its own Harness (cleaned up when fn returns).

    Why: detaching aiocopd's ~140 probes takes the kernel seconds, and a new aiocopd cannot
    attach until an exiting one has detached, but several exiting at once detach together. So
    the interpreters' runs of a scenario overlap, `parallel` at a time. Returns {kind: result
    or raised exception}.
    """
    outcomes = {}

    def one(interp):
        h = Harness()
        try:
            outcomes[interp.kind] = fn(h, interp)
        except BaseException as e:      # pytest.fail/skip raise BaseException subclasses
            outcomes[interp.kind] = e
        try:
            h.cleanup()
        except BaseException as e:      # a sanitizer report outweighs the run's own outcome
            outcomes[interp.kind] = e

    # at most `parallel` at a time: CPU-bound targets, or the kernel's serial probe removal,
    # must not be measured against each other (such scenarios ask for 1)
    interps = [i for i in available_interpreters() if kinds is None or i.kind in kinds]
    for start in range(0, len(interps), max(1, parallel)):
        threads = [threading.Thread(target=one, args=(i,), name=f"e2e-{i.kind}")
                   for i in interps[start:start + max(1, parallel)]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return outcomes


# ---- BPF programs --------------------------------------------------------------------------

def aiocopd_prog_names():
    """The names of the BPF object's programs, from the skeleton built beside the binary."""
    skeleton = Path(AIOCOPD).parent / "aiocopd.skel.h"
    return set(re.findall(r"struct bpf_program \*(\w+);", skeleton.read_text()))


def is_aiocopd_prog_name(name):
    # the kernel keeps 15 characters of a program's name when it cannot use BTF
    return any(name[:15] == n[:15] for n in aiocopd_prog_names())


def bpf_programs():
    """{id: name} of every loaded BPF program, from `bpftool -j prog list`."""
    out = subprocess.run(["bpftool", "-j", "prog", "list"], check=True, capture_output=True,
                         text=True, timeout=30).stdout
    return {p["id"]: p.get("name", "") for p in json.loads(out or "[]")}


def prog_ids_held_by(pid, kind="prog_id"):
    """IDs of the BPF programs (or, with kind="map_id", maps) a process holds file descriptors
    to (from /proc/PID/fdinfo)."""
    ids = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except (FileNotFoundError, PermissionError, ProcessLookupError):
        return ids
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith(f"{kind}:"):
                        ids.add(int(line.split()[1]))
        except (FileNotFoundError, PermissionError, ProcessLookupError, ValueError):
            pass
    return ids


def prog_ids_held_by_anyone():
    ids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            ids |= prog_ids_held_by(int(entry))
    return ids


def orphaned_programs(before, timeout=60.0):
    """{id: name} of aiocopd's programs loaded since `before` (a bpf_programs() snapshot)
    that no live process holds, once the kernel has had timeout seconds to release those of
    processes that exited (a uprobe_multi link goes only after an RCU grace period)."""
    deadline = time.monotonic() + timeout
    while True:
        now = bpf_programs()
        leaked = {i: n for i, n in now.items() if is_aiocopd_prog_name(n) and i not in before}
        if leaked:
            held = prog_ids_held_by_anyone()
            leaked = {i: n for i, n in leaked.items() if i not in held}
        if not leaked or time.monotonic() > deadline:
            return leaked
        time.sleep(0.2)

