"""Helpers of the end-to-end tests of `aiocopd service` (SPEC section 6).

A Service runs the real binary in the foreground with a configuration written by the test,
NOTIFY_SOCKET pointing at a datagram socket of the test (so every sd_notify message is seen),
its metrics on a free loopback port (read back with prometheus_client's own parser) and its
reports on stdout (log = stdout) or in a file.
"""
import json
import os
import signal
import socket
import threading
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

READY_TIMEOUT = 30.0


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Notifications:
    """The sd_notify datagrams a service sends, as they arrive."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._closed:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._cond:
                self.messages.append((time.monotonic(), data.decode("utf-8", "replace")))
                self._cond.notify_all()

    def assignments(self):
        """Every KEY=VALUE line sent, in order."""
        with self._cond:
            return [line for _, m in self.messages for line in m.split("\n") if line]

    def wait_for(self, line, after=0, timeout=READY_TIMEOUT):
        """Index (in assignments()) of the first `line` at or after index `after`, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                lines = [x for _, m in self.messages for x in m.split("\n") if x]
                for i in range(after, len(lines)):
                    if lines[i] == line or (line.endswith("=") and lines[i].startswith(line)):
                        return i
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.5))

    def close(self):
        self._closed = True
        self._thread.join(timeout=2)
        self.sock.close()


class Service:
    """`aiocopd service -c DIR/aiocopd.conf` started through a Harness (so it is reaped)."""

    def __init__(self, harness, directory, config, log="stdout", metrics=True, env=None,
                 args=(), prefix=()):
        self.dir = directory
        self.conf = directory / "aiocopd.conf"
        self.port = free_port() if metrics else None
        self.log = log
        self.write_config(config)
        self.notify = Notifications(directory / "notify.sock")
        full_env = {"NOTIFY_SOCKET": self.notify.path}
        full_env.update(env or {})
        self.proc = harness.aiocopd("service", "-c", self.conf, *args, env=full_env,
                                    prefix=prefix)

    def write_config(self, config, log=None):
        log = log or self.log
        listen = f"127.0.0.1:{self.port}" if self.port else ""
        head = f"[service]\nlog = {log}\nmetrics_listen = {listen}\n"
        self.conf.write_text(head + config)

    def wait_ready(self, after=0, timeout=READY_TIMEOUT):
        i = self.notify.wait_for("READY=1", after, timeout)
        assert i is not None, f"no READY=1 within {timeout}s:\n{self.describe()}"
        return i

    def reload(self):
        """SIGHUP; returns once READY=1 followed RELOADING=1."""
        start = len(self.notify.assignments())
        self.proc.signal(signal.SIGHUP)
        r = self.notify.wait_for("RELOADING=1", start)
        assert r is not None, f"no RELOADING=1 after SIGHUP:\n{self.describe()}"
        return self.wait_ready(r + 1)

    def reports(self, of_pid=None):
        """The JSON objects written so far (stdout, or the log file)."""
        if self.log == "stdout":
            lines = self.proc.stdout
        else:
            path = self.log.split(":", 1)[1]
            lines = open(path, encoding="utf-8").read().splitlines() if os.path.exists(path) \
                else []
        out = [json.loads(line) for line in lines if line.startswith("{")]
        return [r for r in out if of_pid is None or r.get("pid") == of_pid]

    def wait_report(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self.reports():
                if predicate(r):
                    return r
            if not self.proc.running():
                break
            time.sleep(0.1)
        return None

    def wait_stderr(self, predicate, timeout):
        return self.proc.wait_line("err", predicate, timeout)

    def metrics(self):
        """{(name, frozenset(labels.items())): value} of one scrape."""
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10).read()
        out = {}
        for family in text_string_to_metric_families(body.decode("utf-8")):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def metric(self, name, **labels):
        return self.metrics().get((name, frozenset(labels.items())))

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def stop(self, timeout=30):
        self.proc.signal(signal.SIGTERM)
        rc = self.proc.wait(timeout)
        self.notify.close()
        return rc

    def describe(self):
        return f"{self.proc.describe()}\n  notify: {self.notify.assignments()!r}"
