// SPDX-License-Identifier: GPL-2.0
/*
 * The service's metrics (see metrics.h). One record per configured service, found by a
 * linear search: there are as many as [watch] rules. Times are kept in integer nanoseconds
 * and rendered as exact decimals, so counters lose nothing to rounding over weeks.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "metrics.h"
#include "report.h"

#define LEVEL_KINDS	(LEVEL_HIGH + 1)
#define CATEGORY_KINDS	(CAT_OTHER + 1)
#define NS_PER_US	UINT64_C(1000)
#define NS_PER_S	UINT64_C(1000000000)
#define MAX_SECONDS	1e9		/* an observation past 30 years is a bug: clamped */

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))

/* Upper bounds of the slow-callback histogram, in microseconds. */
static const uint64_t slow_le_us[] = {
	5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

/*
 * Upper bounds of the loop busy-time histogram, in microseconds. Each is the lower edge of a
 * kernel bucket (loop_hist_bucket()), the one nearest a 1-2.5-5 step from 100 us to 10 s, so
 * a bucket sums whole kernel buckets: its count is exact, not interpolated. (A kernel bucket
 * holds the iterations of whole microseconds below its upper edge, so `le` here counts what
 * was busy for less than the bound: the same but for an iteration of exactly that many ns.)
 */
static const uint64_t loop_le_us[] = {
	96, 256, 512, 1024, 2560, 5120, 10240, 24576, 49152, 98304,
	262144, 524288, 1048576, 2621440, 5242880, 10485760,
};

#define SLOW_BUCKETS	ARRAY_LEN(slow_le_us)
#define LOOP_BUCKETS	ARRAY_LEN(loop_le_us)

static const char *const attach_failure_names[ATTACH_FAILURE_KINDS] = {
	[ATTACH_NOT_PYTHON] = "not_python", [ATTACH_UNSUPPORTED] = "unsupported",
	[ATTACH_NO_ACCESS] = "no_access", [ATTACH_PROBE] = "probe", [ATTACH_GONE] = "gone",
	[ATTACH_TABLE_FULL] = "table_full",
};

static const char *const loss_names[SERVICE_LOSS_KINDS] = {
	[LOST_RING_BUFFER] = "ring_buffer", [LOST_CALLBACK_CAP] = "callback_cap",
	[LOST_TABLE_FULL] = "table_full", [SERVICE_LOST_LOG_WRITE] = "log_write",
	[SERVICE_LOST_RATE_TABLE] = "rate_table",
};

static const char *const reload_results[] = { "error", "ok" };	/* indexed by ok */

struct service_metrics {
	char *name;			/* the rule name, as the caller names it */
	char *label;			/* the same as well-formed UTF-8, for the exposition */
	unsigned watched;
	uint64_t slow[LEVEL_KINDS];
	uint64_t slow_counts[SLOW_BUCKETS + 1];	/* per bucket, not cumulative; last: +Inf */
	uint64_t slow_ns;
	uint64_t blocking_ns[CATEGORY_KINDS];
	uint64_t loop_counts[LOOP_BUCKETS + 1];
	uint64_t loop_busy_ns;
	uint64_t suppressed;
};

struct metrics {
	char *version;
	struct service_metrics **services;
	size_t n_services;
	uint64_t attach_failures[ATTACH_FAILURE_KINDS];
	uint64_t lost[SERVICE_LOSS_KINDS];
	uint64_t reloads[ARRAY_LEN(reload_results)];
	uint8_t loop_bucket_of[LOOP_HIST_BUCKETS];	/* kernel bucket -> loop_counts index */
};

/* ---- the registry ------------------------------------------------------------------ */

/* Which of our buckets each kernel bucket falls in: the first whose bound is past it. */
static void map_loop_buckets(struct metrics *m)
{
	for (unsigned b = 0; b < LOOP_HIST_BUCKETS; b++) {
		unsigned i = 0;

		while (i < LOOP_BUCKETS && b >= loop_hist_bucket(loop_le_us[i] * NS_PER_US))
			i++;
		m->loop_bucket_of[b] = i;
	}
}

struct metrics *metrics_new(const char *version)
{
	struct metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->version = strdup(version ? version : "unknown");
	if (!m->version) {
		free(m);
		return NULL;
	}
	map_loop_buckets(m);
	return m;
}

static void service_free(struct service_metrics *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->label);
	free(s);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_services; i++)
		service_free(m->services[i]);
	free(m->services);
	free(m->version);
	free(m);
}

/* Prometheus refuses a whole scrape over one label value that is not UTF-8. */
static char *label_text(const char *name)
{
	struct json_object *j = json_text(name);
	char *s = strdup(json_object_get_string(j));

	json_object_put(j);
	return s;
}

static struct service_metrics *service_new(const char *name)
{
	struct service_metrics *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->name = strdup(name);
	s->label = label_text(name);
	if (!s->name || !s->label) {
		service_free(s);
		return NULL;
	}
	return s;
}

static struct service_metrics *find_in(struct service_metrics *const *v, size_t n,
				       const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i]->name, name))
			return v[i];
	return NULL;
}

static struct service_metrics *find_service(const struct metrics *m, const char *service)
{
	return service ? find_in(m->services, m->n_services, service) : NULL;
}

static bool label_taken(struct service_metrics *const *v, size_t n, const char *label)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(v[i]->label, label))
			return true;
	return false;
}

/* Frees the records of from that the array keep does not hold. */
static void free_unkept(struct service_metrics **from, size_t n_from,
			struct service_metrics *const *keep, size_t n_keep)
{
	for (size_t i = 0; i < n_from; i++) {
		size_t k = 0;

		while (k < n_keep && keep[k] != from[i])
			k++;
		if (k == n_keep)
			service_free(from[i]);
	}
}

/*
 * The new set is built whole before the old one goes: out of memory, nothing changed. Of
 * two names with one label value (they differ only in bytes that are not UTF-8), the first
 * is kept: a series is never written twice.
 */
int metrics_set_services(struct metrics *m, const char *const *names, size_t n)
{
	struct service_metrics **next = calloc(n ? n : 1, sizeof(*next));
	size_t n_next = 0;

	if (!next)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct service_metrics *s;

		if (!names[i] || find_in(next, n_next, names[i]))
			continue;
		s = find_service(m, names[i]);
		if (!s)
			s = service_new(names[i]);
		if (!s)
			goto fail;
		if (label_taken(next, n_next, s->label)) {
			if (!find_service(m, names[i]))
				service_free(s);
			continue;
		}
		next[n_next++] = s;
	}
	free_unkept(m->services, m->n_services, next, n_next);
	free(m->services);
	m->services = next;
	m->n_services = n_next;
	return 0;
fail:
	free_unkept(next, n_next, m->services, m->n_services);
	free(next);
	return -ENOMEM;
}

/* ---- updates ----------------------------------------------------------------------- */

static uint64_t seconds_to_ns(double seconds)
{
	if (!(seconds > 0))		/* also NaN */
		return 0;
	if (seconds > MAX_SECONDS)
		seconds = MAX_SECONDS;
	return (uint64_t)(seconds * NS_PER_S + 0.5);
}

void metrics_set_watched(struct metrics *m, const char *service, unsigned n)
{
	struct service_metrics *s = find_service(m, service);

	if (s)
		s->watched = n;
}

void metrics_slow_callback(struct metrics *m, const char *service, enum severity_level level,
			   double seconds)
{
	struct service_metrics *s = find_service(m, service);
	uint64_t ns = seconds_to_ns(seconds);
	unsigned i = 0;

	if (!s || (unsigned)level >= LEVEL_KINDS)
		return;
	while (i < SLOW_BUCKETS && ns > slow_le_us[i] * NS_PER_US)
		i++;
	s->slow[level]++;
	s->slow_counts[i]++;
	s->slow_ns += ns;
}

void metrics_blocking(struct metrics *m, const char *service, enum category category,
		      double seconds)
{
	struct service_metrics *s = find_service(m, service);

	if (!s)
		return;
	if ((unsigned)category >= CATEGORY_KINDS)
		category = CAT_OTHER;		/* as category_name() names it */
	s->blocking_ns[category] += seconds_to_ns(seconds);
}

void metrics_loop_busy(struct metrics *m, const char *service,
		       const uint32_t hist[LOOP_HIST_BUCKETS], uint64_t busy_ns)
{
	struct service_metrics *s = find_service(m, service);

	if (!s)
		return;
	for (unsigned b = 0; b < LOOP_HIST_BUCKETS; b++)
		s->loop_counts[m->loop_bucket_of[b]] += hist[b];
	s->loop_busy_ns += busy_ns;
}

void metrics_suppressed(struct metrics *m, const char *service, uint64_t n)
{
	struct service_metrics *s = find_service(m, service);

	if (s)
		s->suppressed += n;
}

void metrics_attach_failure(struct metrics *m, enum attach_failure reason)
{
	if ((unsigned)reason < ATTACH_FAILURE_KINDS)
		m->attach_failures[reason]++;
}

void metrics_set_lost(struct metrics *m, unsigned kind, uint64_t total)
{
	if (kind < SERVICE_LOSS_KINDS)
		m->lost[kind] = total;
}

void metrics_add_lost(struct metrics *m, unsigned kind, uint64_t n)
{
	if (kind < SERVICE_LOSS_KINDS)
		m->lost[kind] += n;
}

void metrics_config_reload(struct metrics *m, bool ok)
{
	m->reloads[ok]++;
}

/* ---- the exposition ---------------------------------------------------------------- */

/* Nanoseconds as exact decimal seconds, without trailing zeros. */
static const char *ns_text(uint64_t ns, char buf[32])
{
	int n = snprintf(buf, 32, "%" PRIu64 ".%09" PRIu64, ns / NS_PER_S, ns % NS_PER_S);

	while (buf[n - 1] == '0')
		buf[--n] = 0;
	if (buf[n - 1] == '.')
		buf[n - 1] = 0;
	return buf;
}

static const char *u64_text(uint64_t v, char buf[32])
{
	snprintf(buf, 32, "%" PRIu64, v);
	return buf;
}

/* A label value, escaped as the text format wants: backslash, double quote, line feed. */
static void put_label_value(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: name+suffix{service="..",key="label"} value; service and key may be NULL. */
static void sample(FILE *f, const char *name, const char *suffix, const char *service,
		   const char *key, const char *label, const char *value)
{
	fprintf(f, "%s%s", name, suffix);
	if (service || key)
		fputc('{', f);
	if (service) {
		fputs("service=\"", f);
		put_label_value(f, service);
		fputc('"', f);
	}
	if (key) {
		fprintf(f, "%s%s=\"", service ? "," : "", key);
		put_label_value(f, label);
		fputc('"', f);
	}
	if (service || key)
		fputc('}', f);
	fprintf(f, " %s\n", value);
}

/* A histogram of one service from its per-bucket counts (n bounds, then +Inf). */
static void histogram(FILE *f, const char *name, const char *service, const uint64_t *le_us,
		      size_t n, const uint64_t *counts, uint64_t sum_ns)
{
	uint64_t cumulative = 0;
	char le[32], v[32];

	for (size_t i = 0; i < n; i++) {
		cumulative += counts[i];
		sample(f, name, "_bucket", service, "le", ns_text(le_us[i] * NS_PER_US, le),
		       u64_text(cumulative, v));
	}
	cumulative += counts[n];
	sample(f, name, "_bucket", service, "le", "+Inf", u64_text(cumulative, v));
	sample(f, name, "_sum", service, NULL, NULL, ns_text(sum_ns, v));
	sample(f, name, "_count", service, NULL, NULL, u64_text(cumulative, v));
}

/* A counter with one fixed label: every value, zero or not. */
static void fixed_counter(FILE *f, const char *name, const char *help, const char *key,
			  const char *const *labels, const uint64_t *values, size_t n)
{
	char v[32];

	family(f, name, "counter", help);
	for (size_t i = 0; i < n; i++)
		sample(f, name, "", NULL, key, labels[i], u64_text(values[i], v));
}

static void render_watched(FILE *f, const struct metrics *m)
{
	char v[32];

	family(f, "aiocopd_watched_processes", "gauge", "Processes watched now, by service.");
	for (size_t i = 0; i < m->n_services; i++)
		sample(f, "aiocopd_watched_processes", "", m->services[i]->label, NULL, NULL,
		       u64_text(m->services[i]->watched, v));
}

static void render_slow(FILE *f, const struct metrics *m)
{
	const char *name = "aiocopd_slow_callbacks_total";
	char v[32];

	family(f, name, "counter", "Slow callbacks reported, by service and severity level.");
	for (size_t i = 0; i < m->n_services; i++)
		for (unsigned l = 0; l < LEVEL_KINDS; l++)
			sample(f, name, "", m->services[i]->label, "level",
			       severity_level_name(l), u64_text(m->services[i]->slow[l], v));
	name = "aiocopd_slow_callback_seconds";
	family(f, name, "histogram", "Duration of the slow callbacks reported.");
	for (size_t i = 0; i < m->n_services; i++)
		histogram(f, name, m->services[i]->label, slow_le_us, SLOW_BUCKETS,
			  m->services[i]->slow_counts, m->services[i]->slow_ns);
}

static void render_blocking(FILE *f, const struct metrics *m)
{
	const char *name = "aiocopd_blocking_seconds_total";
	char v[32];

	family(f, name, "counter",
	       "Time in blocking operations inside reported callbacks, by category.");
	for (size_t i = 0; i < m->n_services; i++)
		for (unsigned c = 0; c < CATEGORY_KINDS; c++)
			sample(f, name, "", m->services[i]->label, "category", category_name(c),
			       ns_text(m->services[i]->blocking_ns[c], v));
}

static void render_loop(FILE *f, const struct metrics *m)
{
	const char *name = "aiocopd_loop_busy_seconds";

	family(f, name, "histogram",
	       "Busy time of each event loop iteration (the loop's lag), from the kernel.");
	for (size_t i = 0; i < m->n_services; i++)
		histogram(f, name, m->services[i]->label, loop_le_us, LOOP_BUCKETS,
			  m->services[i]->loop_counts, m->services[i]->loop_busy_ns);
}

static void render_suppressed(FILE *f, const struct metrics *m)
{
	const char *name = "aiocopd_reports_suppressed_total";
	char v[32];

	family(f, name, "counter", "Reports not written, over report_limit_per_minute.");
	for (size_t i = 0; i < m->n_services; i++)
		sample(f, name, "", m->services[i]->label, NULL, NULL,
		       u64_text(m->services[i]->suppressed, v));
}

static void render(FILE *f, const struct metrics *m)
{
	family(f, "aiocopd_build_info", "gauge", "The version of aiocopd serving these metrics.");
	sample(f, "aiocopd_build_info", "", NULL, "version", m->version, "1");
	render_watched(f, m);
	render_slow(f, m);
	render_blocking(f, m);
	render_loop(f, m);
	render_suppressed(f, m);
	fixed_counter(f, "aiocopd_attach_failures_total",
		      "Matching processes that could not be watched, by reason.", "reason",
		      attach_failure_names, m->attach_failures, ATTACH_FAILURE_KINDS);
	fixed_counter(f, "aiocopd_events_lost_total",
		      "Events lost: ring buffer full, per-callback cap, tables full, log writes "
		      "refused, rate-limit table full.", "kind", loss_names, m->lost,
		      SERVICE_LOSS_KINDS);
	fixed_counter(f, "aiocopd_config_reloads_total", "Configuration reloads, by result.",
		      "result", reload_results, m->reloads, ARRAY_LEN(reload_results));
}

char *metrics_render(const struct metrics *m, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	bool failed;

	if (!f)
		return NULL;
	render(f, m);
	failed = ferror(f);
	if (fclose(f) || failed) {
		free(buf);
		return NULL;
	}
	if (len)
		*len = size;
	return buf;
}
