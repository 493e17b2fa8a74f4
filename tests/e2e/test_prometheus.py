"""End-to-end test of `aiocopd service`'s metrics (SPEC 6.4) as a real Prometheus server sees
them: Debian's prometheus scrapes the endpoint every second, and the series are read back
through its HTTP API (/api/v1/targets, /api/v1/query); `promtool check metrics` lints one
scrape. The service watches one sleeper.py, selected by a tag on its command line.
"""
import math
import os
import urllib.request
import uuid

from aiocopd_e2e import INTERPRETERS, REPO, unavailable
from prometheus_e2e import PROMETHEUS, PROMTOOL, Prometheus, promtool_check_metrics
from service_e2e import Service

JOB = "aiocopd"
SERVICE = "orders-api"
# Prometheus's own counters of samples it refused (bad timestamps) from a scrape that succeeded
REFUSED_SAMPLES = ("prometheus_target_scrapes_sample_duplicate_timestamp_total",
                   "prometheus_target_scrapes_sample_out_of_order_total",
                   "prometheus_target_scrapes_sample_out_of_bounds_total")
# the two queries README.md gives (section "Production service", Metrics)
README_HIGH_RATE = 'sum by (service) (rate(aiocopd_slow_callbacks_total{level="high"}[5m]))'
README_LAG_P99 = ("histogram_quantile(0.99, sum by (service, le) "
                  "(rate(aiocopd_loop_busy_seconds_bucket[5m])))")


def value_of(result):
    """The value of a one-series result."""
    assert len(result) == 1, result
    return result[0][1]


def test_prometheus_scrapes_the_service(harness, tmp_path):
    for tool in (PROMETHEUS, PROMTOOL):
        if not os.access(tool, os.X_OK):
            unavailable(f"{tool} is not installed (Debian package prometheus)")
    tag = "prom-" + uuid.uuid4().hex[:10]
    target = harness.target(INTERPRETERS["debian"], "sleeper.py", tag)
    svc = Service(harness, tmp_path, f'[watch "{SERVICE}"]\ncmdline = sleeper\\.py {tag}\n')
    svc.wait_ready()
    endpoint = f"127.0.0.1:{svc.port}"

    body = urllib.request.urlopen(f"http://{endpoint}/metrics", timeout=10).read().decode()
    rc, said = promtool_check_metrics(body)
    assert rc == 0 and said == "", f"promtool check metrics (exit {rc}):\n{said}"
    samples = sum(1 for line in body.splitlines() if line and not line.startswith("#"))

    prom = Prometheus(harness, tmp_path, endpoint, JOB)
    prom.wait_ready()
    up = prom.wait_target_up()
    assert up["scrapeUrl"] == f"http://{endpoint}/metrics", up

    mine = f'job="{JOB}",service="{SERVICE}"'
    watched = prom.wait_query(f"aiocopd_watched_processes{{{mine}}}", lambda r: r)
    assert value_of(watched) == 1, watched
    assert watched[0][0]["instance"] == endpoint, watched
    version = (REPO / "VERSION").read_text().strip()
    build = prom.query(f'aiocopd_build_info{{job="{JOB}"}}')
    assert build == [({"__name__": "aiocopd_build_info", "instance": endpoint, "job": JOB,
                       "version": version}, 1.0)], build
    # every sample of a scrape is stored as a series of its own: a series written twice
    # passes promtool and the scrape, but leaves fewer series than samples
    assert value_of(prom.query(f'scrape_samples_scraped{{job="{JOB}"}}')) == samples
    series = prom.query(f'count({{job="{JOB}",__name__=~"aiocopd_.+"}})')
    assert value_of(series) == samples, (series, samples)
    for name in REFUSED_SAMPLES:
        assert prom.own_counter(name) == 0, name

    # counters move between scrapes: the 60 ms sleeps are high-severity slow callbacks
    prom.wait_query(f'count_over_time(up{{job="{JOB}"}}[1m])', lambda r: r and r[0][1] >= 4)
    high = f'{mine},level="high"'
    increase = value_of(prom.wait_query(f"increase(aiocopd_slow_callbacks_total{{{high}}}[1m])",
                                        lambda r: r and r[0][1] > 0))
    rate = value_of(prom.query(f"rate(aiocopd_slow_callbacks_total{{{high}}}[1m])"))
    assert increase > 0 and rate > 0, (increase, rate)
    slept = value_of(prom.query(f'aiocopd_blocking_seconds_total{{{mine},category="sleep"}}'))
    assert slept >= 0.06, slept

    # the loop's lag histogram is usable: its 99th percentile is a number, and the 60 ms
    # sleeps (one iteration in five or so) put it over 49 ms while the median stays short
    buckets = f"aiocopd_loop_busy_seconds_bucket{{{mine}}}"
    p99 = value_of(prom.query(f"histogram_quantile(0.99, {buckets})"))
    p50 = value_of(prom.query(f"histogram_quantile(0.5, {buckets})"))
    assert math.isfinite(p99) and 0.049 < p99 < 1.0, p99
    assert math.isfinite(p50) and p50 < 0.049, p50
    readme = (REPO / "README.md").read_text()
    for expr in (README_HIGH_RATE, README_LAG_P99):
        assert expr in readme, f"README.md no longer gives {expr}"
        result = prom.query(expr)
        assert [m for m, _ in result] == [{"service": SERVICE}], (expr, result)
        assert math.isfinite(value_of(result)) and value_of(result) > 0, (expr, result)

    svc.reload()
    reloads = f'aiocopd_config_reloads_total{{job="{JOB}"}}'
    result = prom.wait_query(reloads, lambda r: any(
        m["result"] == "ok" and v == 1 for m, v in r))
    assert {m["result"]: v for m, v in result} == {"ok": 1, "error": 0}, result
    prom.wait_target_up()

    assert prom.stop() == 0, prom.describe()
    assert svc.stop() == 0, svc.describe()
    assert target.running(), "the target did not survive the service"
    target.stop()
