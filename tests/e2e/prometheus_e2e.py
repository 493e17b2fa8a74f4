"""A real Prometheus server (Debian's /usr/bin/prometheus) for the end-to-end tests: it scrapes
the targets it is given every second and is read back through its HTTP API, so what aiocopd
serves is checked by the system users point at it.

It runs as a child of the test (through a Harness, so it is reaped even when a test fails),
listens on a free loopback port and keeps its database in the test's directory: nothing of
the host is read or written.
"""
import json
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from service_e2e import free_port

PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
READY_TIMEOUT = 20.0

CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


class Prometheus:
    """`prometheus --config.file DIR/prometheus.yml` scraping one target as `job`."""

    def __init__(self, harness, directory, target, job):
        self.job = job
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        config.write_text(CONFIG.format(job=job, target=target))
        data = directory / "tsdb"
        data.mkdir()
        self.proc = harness.spawn([PROMETHEUS, f"--config.file={config}",
                                   f"--storage.tsdb.path={data}",
                                   f"--web.listen-address=127.0.0.1:{self.port}"])

    def wait_ready(self, timeout=READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.running():
            try:
                if _get(self.url + "/-/ready", timeout=1)[0] == 200:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"prometheus not ready within {timeout}s:\n{self.describe()}")

    def api(self, path, **params):
        """The `data` of a successful /api/v1/PATH answer."""
        query = urllib.parse.urlencode(params)
        status, body = _get(f"{self.url}/api/v1/{path}?{query}")
        answer = json.loads(body)
        assert status == 200 and answer.get("status") == "success", (path, params, body)
        return answer["data"]

    def scrape_target(self):
        """The active target of our job as /api/v1/targets shows it, or None."""
        for t in self.api("targets", state="active")["activeTargets"]:
            if t["labels"].get("job") == self.job and t["labels"].get("instance") == self.target:
                return t
        return None

    def wait_target_up(self, timeout=15):
        """The target once Prometheus has scraped it successfully; fails with its lastError."""
        deadline = time.monotonic() + timeout
        t = None
        while time.monotonic() < deadline:
            t = self.scrape_target()
            if t and t["health"] == "up" and t["lastError"] == "":
                return t
            if t and t["health"] == "down":
                break
            time.sleep(0.3)
        raise AssertionError(f"target {self.target} not up: health "
                             f"{t and t['health']!r}, lastError {t and t['lastError']!r}")

    def query(self, expr):
        """[(labels, value)] of an instant vector, or a scalar's [({}, value)]."""
        data = self.api("query", query=expr)
        if data["resultType"] == "vector":
            return [(r["metric"], float(r["value"][1])) for r in data["result"]]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        raise AssertionError(f"{expr}: unexpected result type {data['resultType']}")

    def wait_query(self, expr, predicate, timeout=10):
        """The result of expr once predicate(result) holds; fails with the last one."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if predicate(result):
                return result
            if time.monotonic() >= deadline:
                raise AssertionError(f"{expr} after {timeout}s: {result!r}")
            time.sleep(0.3)

    def own_counter(self, name):
        """The sum of one of Prometheus's own counters, from its /metrics."""
        body = _get(self.url + "/metrics")[1]
        return sum(s.value for f in text_string_to_metric_families(body) for s in f.samples
                   if s.name == name)

    def stop(self, timeout=20):
        self.proc.signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def describe(self):
        return self.proc.describe()


def promtool_check_metrics(body):
    """What `promtool check metrics` says of an exposition: (exit status, its output)."""
    p = subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True,
                       text=True, timeout=30)
    return p.returncode, (p.stdout + p.stderr).strip()
