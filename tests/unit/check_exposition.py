#!/usr/bin/env python3
"""Check a metrics exposition written by aiocopd (src/metrics.c) for tests/unit/test_metrics.c.

    /usr/bin/python3 tests/unit/check_exposition.py FILE

Parses FILE with the Prometheus client's own text-format parser
(prometheus_client.parser.text_string_to_metric_families, Debian's
python3-prometheus-client), and with Prometheus's own (`promtool check
metrics`, Debian's prometheus: its parser and linter). Since neither catches
everything, it checks as well each line's grammar, one HELP and TYPE per
family before its samples, no sample written twice, histograms whose buckets
rise, end at +Inf and agree with _count, and that the families are those of
SPEC 6.4 with their types. On success it prints what the parser read, as
JSON ({"families": {name: type}, "samples": [{name, labels, value}]}), and
exits 0; otherwise it says what is wrong on stderr and exits 1.
"""

import json
import math
import re
import subprocess
import sys

from prometheus_client.parser import text_string_to_metric_families

# Family names as the parser reports them: a counter's without its _total.
FAMILIES = {
    "aiocopd_build_info": "gauge",
    "aiocopd_watched_processes": "gauge",
    "aiocopd_slow_callbacks": "counter",
    "aiocopd_slow_callback_seconds": "histogram",
    "aiocopd_blocking_seconds": "counter",
    "aiocopd_loop_busy_seconds": "histogram",
    "aiocopd_reports_suppressed": "counter",
    "aiocopd_attach_failures": "counter",
    "aiocopd_events_lost": "counter",
    "aiocopd_config_reloads": "counter",
}

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
VALUE = r"(?:[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]Inf|NaN)"
SAMPLE_RE = re.compile(rf"^({NAME})(?:\{{(?:{LABEL}(?:,{LABEL})*)?\}})? {VALUE}$")
COMMENT_RE = re.compile(rf"^# (HELP|TYPE) ({NAME}) (.*)$")


class Invalid(Exception):
    pass


def check_lines(text):
    """The grammar of every line, and HELP then TYPE once per family, before its samples."""
    if not text.endswith("\n"):
        raise Invalid("the text does not end with a line feed")
    seen_help, seen_type, sampled = set(), {}, set()
    for n, line in enumerate(text[:-1].split("\n"), 1):
        comment = COMMENT_RE.match(line)
        if comment:
            kind, name, rest = comment.groups()
            if name in sampled:
                raise Invalid(f"line {n}: {kind} of {name} after its samples")
            seen = seen_help if kind == "HELP" else seen_type
            if name in seen:
                raise Invalid(f"line {n}: a second {kind} of {name}")
            if kind == "HELP":
                seen_help.add(name)
            else:
                if name not in seen_help:
                    raise Invalid(f"line {n}: TYPE of {name} before its HELP")
                seen_type[name] = rest
            continue
        sample = SAMPLE_RE.match(line)
        if not sample:
            raise Invalid(f"line {n}: not a sample line: {line!r}")
        name = sample.group(1)
        family = next((f for f, t in seen_type.items() if name == f or (
            t == "histogram" and name in (f + "_bucket", f + "_sum", f + "_count"))), None)
        if family is None:
            raise Invalid(f"line {n}: sample {name} of no declared family")
        sampled.add(family)


def check_histogram(family):
    series = {}
    for s in family.samples:
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        series.setdefault(key, {"buckets": []})
        if s.name.endswith("_bucket"):
            series[key]["buckets"].append((s.labels["le"], s.value))
        else:
            series[key][s.name.rsplit("_", 1)[1]] = s.value
    for key, h in series.items():
        where = f"{family.name}{dict(key)}"
        les = [float(le) for le, _ in h["buckets"]]
        counts = [c for _, c in h["buckets"]]
        if not les or les[-1] != math.inf:
            raise Invalid(f"{where}: the last bucket is not +Inf")
        if any(a >= b for a, b in zip(les, les[1:])):
            raise Invalid(f"{where}: bucket bounds do not rise: {les}")
        if any(a > b for a, b in zip(counts, counts[1:])):
            raise Invalid(f"{where}: bucket counts are not cumulative: {counts}")
        if "count" not in h or "sum" not in h:
            raise Invalid(f"{where}: no _count or no _sum")
        if h["count"] != counts[-1]:
            raise Invalid(f"{where}: _count {h['count']} is not the +Inf bucket {counts[-1]}")
        if h["sum"] < 0:
            raise Invalid(f"{where}: negative _sum")


def check_promtool(text):
    try:
        run = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                             capture_output=True, timeout=60)
    except FileNotFoundError:
        raise Invalid("promtool not found (Debian package prometheus)")
    if run.returncode != 0 or run.stdout.strip() or run.stderr.strip():
        raise Invalid("promtool: " + (run.stdout + run.stderr).decode(errors="replace"))


def check(text):
    check_lines(text)
    check_promtool(text)
    families, samples, seen = {}, [], set()
    for family in text_string_to_metric_families(text):
        if family.name in families:
            raise Invalid(f"family {family.name} written in two places")
        families[family.name] = family.type
        if FAMILIES.get(family.name) != family.type:
            raise Invalid(f"unexpected family {family.name} of type {family.type}")
        for s in family.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            if key in seen:
                raise Invalid(f"sample written twice: {key}")
            seen.add(key)
            if not math.isfinite(s.value) or (family.type == "counter" and s.value < 0):
                raise Invalid(f"{s.name}{s.labels}: bad value {s.value}")
            samples.append({"name": s.name, "labels": s.labels, "value": s.value})
        if family.type == "histogram":
            check_histogram(family)
    missing = set(FAMILIES) - set(families)
    if missing:
        raise Invalid(f"families missing: {sorted(missing)}")
    return {"families": families, "samples": samples}


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        # newline="": a carriage return in a label value must not end a line here
        with open(sys.argv[1], encoding="utf-8", newline="") as f:
            parsed = check(f.read())
    except (Invalid, ValueError, KeyError) as e:
        print(f"check_exposition: {e}", file=sys.stderr)
        return 1
    json.dump(parsed, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
