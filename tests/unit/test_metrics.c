/*
 * test_metrics.c - unit tests for src/metrics.c: every family of SPEC 6.4 rendered, with
 * HELP and TYPE from the start and the fixed label sets at zero; label values escaped; label
 * sets bounded by the configured services; the histograms' cumulative counts, the loop's
 * from a kernel bucket array built with loop_hist_bucket() on known durations.
 *
 * Every rendering is also read by the Prometheus client's own parser
 * (tests/unit/check_exposition.py, which checks as well what that lax parser lets pass),
 * and values are read back from what it parsed, so escaping is checked by a round trip.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "metrics.h"

#define CHECKER		"/usr/bin/python3 tests/unit/check_exposition.py"
#define US		1000ull
#define MS		1000000ull
#define S		1000000000ull

/* ---- helpers --------------------------------------------------------------------------- */

static char *render(const struct metrics *m)
{
	size_t len = 0;
	char *text = metrics_render(m, &len);

	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

/* Whether text has this whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

/* The value written after a sample's name and labels, as text; NULL if it is not there. */
static const char *value_text(const char *text, const char *series)
{
	static char value[64];
	size_t n = strlen(series);

	for (const char *p = text; (p = strstr(p, series)); p++) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			size_t len = strcspn(p + n + 1, "\n");

			assert_true(len < sizeof(value));
			memcpy(value, p + n + 1, len);
			value[len] = 0;
			return value;
		}
	}
	return NULL;
}

/* The text as the Prometheus client parsed it; fails the test if the checker refused it. */
static struct json_object *prometheus_parse(const char *text)
{
	char path[] = "/tmp/test_metrics.XXXXXX", cmd[128], *out = NULL;
	size_t len = 0;
	int fd = mkstemp(path);
	FILE *w, *p, *o;
	struct json_object *j;
	char buf[4096];
	size_t n;

	assert_true(fd >= 0);
	w = fdopen(fd, "w");
	assert_non_null(w);
	assert_int_equal(fwrite(text, 1, strlen(text), w), strlen(text));
	assert_int_equal(fclose(w), 0);
	snprintf(cmd, sizeof(cmd), CHECKER " %s", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	o = open_memstream(&out, &len);
	assert_non_null(o);
	while ((n = fread(buf, 1, sizeof(buf), p)))
		fwrite(buf, 1, n, o);
	fclose(o);
	assert_int_equal(pclose(p), 0);
	unlink(path);
	j = json_tokener_parse(out);
	free(out);
	assert_non_null(j);
	return j;
}

static size_t n_labels(struct json_object *labels)
{
	size_t n = 0;

	json_object_object_foreach(labels, k, v) {
		(void)k;
		(void)v;
		n++;
	}
	return n;
}

/*
 * The value of the parsed sample name{k1="v1",k2="v2"} (k2, k1 may be NULL), exactly those
 * labels; NAN when there is none.
 */
static double parsed(struct json_object *j, const char *name, const char *k1, const char *v1,
		     const char *k2, const char *v2)
{
	struct json_object *samples = json_object_object_get(j, "samples");

	for (size_t i = 0; i < json_object_array_length(samples); i++) {
		struct json_object *s = json_object_array_get_idx(samples, i);
		struct json_object *labels = json_object_object_get(s, "labels"), *l;
		size_t want = (k1 != NULL) + (k2 != NULL);

		if (strcmp(json_object_get_string(json_object_object_get(s, "name")), name) ||
		    n_labels(labels) != want)
			continue;
		if (k1 && (!(l = json_object_object_get(labels, k1)) ||
			   strcmp(json_object_get_string(l), v1)))
			continue;
		if (k2 && (!(l = json_object_object_get(labels, k2)) ||
			   strcmp(json_object_get_string(l), v2)))
			continue;
		return json_object_get_double(json_object_object_get(s, "value"));
	}
	return NAN;
}

static size_t n_samples(struct json_object *j)
{
	return json_object_array_length(json_object_object_get(j, "samples"));
}

static struct metrics *with_services(const char *const *names, size_t n)
{
	struct metrics *m = metrics_new("1.2.3");

	assert_non_null(m);
	assert_int_equal(metrics_set_services(m, names, n), 0);
	return m;
}

/* ---- every family ---------------------------------------------------------------------- */

static const struct {
	const char *name, *type;
} families[] = {
	{ "aiocopd_build_info", "gauge" },
	{ "aiocopd_watched_processes", "gauge" },
	{ "aiocopd_slow_callbacks_total", "counter" },
	{ "aiocopd_slow_callback_seconds", "histogram" },
	{ "aiocopd_blocking_seconds_total", "counter" },
	{ "aiocopd_loop_busy_seconds", "histogram" },
	{ "aiocopd_reports_suppressed_total", "counter" },
	{ "aiocopd_attach_failures_total", "counter" },
	{ "aiocopd_events_lost_total", "counter" },
	{ "aiocopd_config_reloads_total", "counter" },
};

static const char *const reasons[] = {
	"not_python", "unsupported", "no_access", "probe", "gone", "table_full",
};
static const char *const kinds[] = {
	"ring_buffer", "callback_cap", "table_full", "log_write", "rate_table",
};

/* Without services: every family declared, the fixed label sets at zero, nothing else. */
static void test_families_from_the_start(void **state)
{
	struct metrics *m = metrics_new("1.2.3");
	struct json_object *j;
	char *text, line[128];

	assert_non_null(m);
	text = render(m);
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(line, sizeof(line), "# HELP %s ", families[i].name);
		assert_non_null(strstr(text, line));
		snprintf(line, sizeof(line), "# TYPE %s %s", families[i].name, families[i].type);
		assert_true(has_line(text, line));
	}
	assert_null(strstr(text, "service="));
	assert_true(has_line(text, "aiocopd_build_info{version=\"1.2.3\"} 1"));

	j = prometheus_parse(text);
	assert_int_equal(n_samples(j), 1 + 6 + 5 + 2);
	for (size_t i = 0; i < 6; i++)
		assert_true(parsed(j, "aiocopd_attach_failures_total", "reason", reasons[i],
				   NULL, NULL) == 0);
	for (size_t i = 0; i < 5; i++)
		assert_true(parsed(j, "aiocopd_events_lost_total", "kind", kinds[i], NULL,
				   NULL) == 0);
	assert_true(parsed(j, "aiocopd_config_reloads_total", "result", "ok", NULL, NULL) == 0);
	assert_true(parsed(j, "aiocopd_config_reloads_total", "result", "error", NULL, NULL) == 0);
	json_object_put(j);
	free(text);
	metrics_free(m);
}

static void test_every_family(void **state)
{
	const char *names[] = { "orders-api", "billing" };
	struct metrics *m = with_services(names, 2);
	struct json_object *j;
	char *text;

	metrics_set_watched(m, "orders-api", 3);
	metrics_slow_callback(m, "orders-api", LEVEL_LOW, 0.04);
	metrics_slow_callback(m, "orders-api", LEVEL_MEDIUM, 0.2);
	metrics_slow_callback(m, "orders-api", LEVEL_HIGH, 1.5);
	metrics_slow_callback(m, "orders-api", LEVEL_HIGH, 0.06);
	metrics_blocking(m, "orders-api", CAT_NETWORK, 0.25);
	metrics_blocking(m, "orders-api", CAT_NETWORK, 0.5);
	metrics_blocking(m, "orders-api", CAT_DNS, 0.125);
	metrics_blocking(m, "orders-api", (enum category)99, 0.5);	/* as "other" */
	metrics_suppressed(m, "orders-api", 4);
	metrics_suppressed(m, "orders-api", 3);
	metrics_attach_failure(m, ATTACH_PROBE);
	metrics_attach_failure(m, ATTACH_PROBE);
	metrics_attach_failure(m, ATTACH_GONE);
	metrics_attach_failure(m, (enum attach_failure)42);		/* ignored */
	metrics_set_lost(m, LOST_RING_BUFFER, 5);
	metrics_set_lost(m, LOST_RING_BUFFER, 9);			/* a total: replaces */
	metrics_add_lost(m, SERVICE_LOST_LOG_WRITE, 2);
	metrics_add_lost(m, SERVICE_LOST_LOG_WRITE, 3);			/* a count: adds */
	metrics_add_lost(m, SERVICE_LOSS_KINDS, 3);			/* ignored */
	metrics_config_reload(m, true);
	metrics_config_reload(m, false);
	metrics_config_reload(m, false);
	text = render(m);

	/* exact text where the format is ours to choose */
	assert_string_equal(value_text(text, "aiocopd_blocking_seconds_total"
				       "{service=\"orders-api\",category=\"network\"}"), "0.75");
	assert_string_equal(value_text(text, "aiocopd_slow_callback_seconds_sum"
				       "{service=\"orders-api\"}"), "1.8");
	assert_string_equal(value_text(text, "aiocopd_watched_processes{service=\"billing\"}"),
			    "0");

	j = prometheus_parse(text);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "orders-api", NULL,
			   NULL) == 3);
	assert_true(parsed(j, "aiocopd_slow_callbacks_total", "service", "orders-api", "level",
			   "low") == 1);
	assert_true(parsed(j, "aiocopd_slow_callbacks_total", "service", "orders-api", "level",
			   "medium") == 1);
	assert_true(parsed(j, "aiocopd_slow_callbacks_total", "service", "orders-api", "level",
			   "high") == 2);
	assert_true(parsed(j, "aiocopd_slow_callback_seconds_count", "service", "orders-api",
			   NULL, NULL) == 4);
	assert_true(parsed(j, "aiocopd_blocking_seconds_total", "service", "orders-api",
			   "category", category_name(CAT_DNS)) == 0.125);
	assert_true(parsed(j, "aiocopd_blocking_seconds_total", "service", "orders-api",
			   "category", category_name(CAT_OTHER)) == 0.5);
	assert_true(parsed(j, "aiocopd_reports_suppressed_total", "service", "orders-api", NULL,
			   NULL) == 7);
	assert_true(parsed(j, "aiocopd_attach_failures_total", "reason", "probe", NULL,
			   NULL) == 2);
	assert_true(parsed(j, "aiocopd_attach_failures_total", "reason", "gone", NULL, NULL) == 1);
	assert_true(parsed(j, "aiocopd_events_lost_total", "kind", "ring_buffer", NULL,
			   NULL) == 9);
	assert_true(parsed(j, "aiocopd_events_lost_total", "kind", "log_write", NULL, NULL) == 5);
	assert_true(parsed(j, "aiocopd_config_reloads_total", "result", "ok", NULL, NULL) == 1);
	assert_true(parsed(j, "aiocopd_config_reloads_total", "result", "error", NULL,
			   NULL) == 2);

	/* a configured service with nothing yet has every series, at zero */
	for (enum category c = CAT_SLEEP; c <= CAT_OTHER; c++)
		assert_true(parsed(j, "aiocopd_blocking_seconds_total", "service", "billing",
				   "category", category_name(c)) == 0);
	for (enum severity_level l = LEVEL_LOW; l <= LEVEL_HIGH; l++)
		assert_true(parsed(j, "aiocopd_slow_callbacks_total", "service", "billing",
				   "level", severity_level_name(l)) == 0);
	assert_true(parsed(j, "aiocopd_loop_busy_seconds_bucket", "service", "billing", "le",
			   "+Inf") == 0);
	assert_true(parsed(j, "aiocopd_reports_suppressed_total", "service", "billing", NULL,
			   NULL) == 0);
	json_object_put(j);
	free(text);
	metrics_free(m);
}

/* ---- label values ---------------------------------------------------------------------- */

static void test_label_escaping(void **state)
{
	const char *names[] = {
		"back\\slash \"quoted\"\nnext line",
		"braces} and, commas=\"x\"",
		"bad\377byte",
		"tab\tand\rreturn",
	};
	struct metrics *m = with_services(names, 4);
	struct json_object *j;
	char *text;

	for (size_t i = 0; i < 4; i++)
		metrics_set_watched(m, names[i], 10 + i);
	text = render(m);
	assert_non_null(strstr(text, "{service=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 10\n"));
	assert_null(strstr(text, "\xff"));

	j = prometheus_parse(text);
	/* read back as configured */
	assert_true(parsed(j, "aiocopd_watched_processes", "service", names[0], NULL, NULL) == 10);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", names[1], NULL, NULL) == 11);
	/* not UTF-8: the byte becomes U+FFFD, Prometheus would refuse the scrape otherwise */
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "bad\357\277\275byte",
			   NULL, NULL) == 12);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", names[3], NULL, NULL) == 13);
	json_object_put(j);
	free(text);
	metrics_free(m);
}

/* Two names that differ only in bytes that are not UTF-8 have one label value: one series. */
static void test_label_collision(void **state)
{
	const char *names[] = { "x\xfe", "x\xff" };
	struct metrics *m = with_services(names, 2);
	struct json_object *j;
	char *text;

	metrics_set_watched(m, names[0], 1);
	metrics_set_watched(m, names[1], 2);		/* not configured in effect */
	text = render(m);
	j = prometheus_parse(text);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "x\xef\xbf\xbd", NULL,
			   NULL) == 1);
	json_object_put(j);
	free(text);
	metrics_free(m);
}

/* ---- bounded label sets ---------------------------------------------------------------- */

static void test_bounded_by_configuration(void **state)
{
	const char *first[] = { "a", "b", "a" }, *second[] = { "b", "d" }, *third[] = { "a" };
	struct metrics *m = with_services(first, 3);
	struct json_object *j;
	char *text;

	metrics_set_watched(m, "a", 2);
	metrics_set_watched(m, "b", 5);
	metrics_slow_callback(m, "b", LEVEL_HIGH, 0.5);
	/* not configured: ignored, no new label value */
	metrics_set_watched(m, "c", 9);
	metrics_slow_callback(m, "c", LEVEL_LOW, 0.5);
	metrics_blocking(m, "c", CAT_FILE, 1);
	metrics_suppressed(m, "c", 1);
	metrics_loop_busy(m, "c", (uint32_t[LOOP_HIST_BUCKETS]){ 1 }, 1);
	metrics_set_watched(m, NULL, 9);
	text = render(m);
	assert_null(strstr(text, "service=\"c\""));
	j = prometheus_parse(text);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "a", NULL, NULL) == 2);
	/* per service: watched, suppressed, 2 histograms (11 and 16 bounds, +Inf, _sum,
	 * _count), 3 levels, 8 categories; a configured twice is there once */
	assert_int_equal(n_samples(j), 14 + 2 * (2 + 14 + 19 + 3 + 8));
	json_object_put(j);
	free(text);

	/* a goes, b keeps its values, d comes at zero */
	assert_int_equal(metrics_set_services(m, second, 2), 0);
	text = render(m);
	assert_null(strstr(text, "service=\"a\""));
	j = prometheus_parse(text);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "b", NULL, NULL) == 5);
	assert_true(parsed(j, "aiocopd_slow_callbacks_total", "service", "b", "level",
			   "high") == 1);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "d", NULL, NULL) == 0);
	json_object_put(j);
	free(text);

	/* a back: from zero, what it had went with it */
	assert_int_equal(metrics_set_services(m, third, 1), 0);
	text = render(m);
	assert_null(strstr(text, "service=\"b\""));
	j = prometheus_parse(text);
	assert_true(parsed(j, "aiocopd_watched_processes", "service", "a", NULL, NULL) == 0);
	json_object_put(j);
	free(text);

	/* none */
	assert_int_equal(metrics_set_services(m, NULL, 0), 0);
	text = render(m);
	assert_null(strstr(text, "service="));
	free(text);
	metrics_free(m);
}

/* ---- histograms ------------------------------------------------------------------------ */

/* A bucket bound in ns, from its label value (decimal seconds). */
static uint64_t le_ns(const char *le)
{
	return (uint64_t)(strtod(le, NULL) * 1e9 + 0.5);
}

/* For each bucket of a parsed histogram of service "s": calls check(le, count, ctx). */
static size_t each_bucket(struct json_object *j, const char *name,
			  void (*check)(const char *le, double count, void *ctx), void *ctx)
{
	struct json_object *samples = json_object_object_get(j, "samples");
	size_t n = 0;

	for (size_t i = 0; i < json_object_array_length(samples); i++) {
		struct json_object *s = json_object_array_get_idx(samples, i);
		struct json_object *labels = json_object_object_get(s, "labels");

		if (strcmp(json_object_get_string(json_object_object_get(s, "name")), name))
			continue;
		check(json_object_get_string(json_object_object_get(labels, "le")),
		      json_object_get_double(json_object_object_get(s, "value")), ctx);
		n++;
	}
	return n;
}

/* Busy times of loop iterations: on and around the bounds, and past the kernel's last. */
static const uint64_t busy[] = {
	0, 5 * US, 95 * US, 95 * US + 999, 96 * US, 100 * US, 255 * US, 300 * US, 1 * MS,
	2500 * US, 2560 * US, 7 * MS, 30 * MS, 99 * MS, 250 * MS, 600 * MS, 2 * S,
	5300 * MS, 10485759 * US, 10485760 * US, 12 * S, 3600 * S, 5 * 3600 * S,
};
#define N_BUSY	(sizeof(busy) / sizeof(busy[0]))

struct loop_check {
	unsigned buckets;
	double first_le, last_le;
};

static void check_loop_bucket(const char *le, double count, void *ctx)
{
	struct loop_check *c = ctx;
	unsigned want = 0;
	uint64_t bound;

	if (!strcmp(le, "+Inf")) {
		assert_true(count == N_BUSY);
		return;
	}
	bound = le_ns(le);
	/* a kernel bucket edge: the last nanosecond below it is in another bucket */
	assert_true(loop_hist_bucket(bound - 1) < loop_hist_bucket(bound));
	/* the iterations busy for less than the bound (a kernel bucket holds [lo, hi)) */
	for (size_t i = 0; i < N_BUSY; i++)
		want += busy[i] < bound;
	assert_true(count == want);
	if (!c->buckets++)
		c->first_le = strtod(le, NULL);
	c->last_le = strtod(le, NULL);
}

static void test_loop_histogram(void **state)
{
	const char *names[] = { "s" };
	struct metrics *m = with_services(names, 1);
	uint32_t hist[2][LOOP_HIST_BUCKETS] = { { 0 } };
	struct loop_check c = { 0 };
	struct json_object *j;
	uint64_t sum = 0;
	size_t n;
	char *text;

	/* in two updates, as the service adds what each poll found new */
	for (size_t i = 0; i < N_BUSY; i++) {
		hist[i % 2][loop_hist_bucket(busy[i])]++;
		sum += busy[i];
	}
	metrics_loop_busy(m, "s", hist[0], sum / 2);
	metrics_loop_busy(m, "s", hist[1], sum - sum / 2);
	text = render(m);
	j = prometheus_parse(text);
	n = each_bucket(j, "aiocopd_loop_busy_seconds_bucket", check_loop_bucket, &c);
	assert_int_equal(n, c.buckets + 1);	/* and +Inf */
	assert_in_range(c.buckets, 10, 20);
	assert_true(c.first_le <= 100e-6 && c.last_le >= 10);
	assert_true(parsed(j, "aiocopd_loop_busy_seconds_count", "service", "s", NULL, NULL) ==
		    N_BUSY);
	/* _sum exactly, in seconds */
	{
		char want[64];

		snprintf(want, sizeof(want), "%llu.%09llu", (unsigned long long)(sum / S),
			 (unsigned long long)(sum % S));
		while (want[strlen(want) - 1] == '0')
			want[strlen(want) - 1] = 0;
		assert_string_equal(value_text(text, "aiocopd_loop_busy_seconds_sum{service=\"s\"}"),
				    want);
	}
	json_object_put(j);
	free(text);
	metrics_free(m);
}

/* Slow callbacks, in seconds: on a bound counts in it (le), and nonsense as 0. */
static const double slow[] = { 0.03, 0.05, 0.0500001, 0.2, 1, 3, 20, -1, NAN };
#define N_SLOW	(sizeof(slow) / sizeof(slow[0]))

static void check_slow_bucket(const char *le, double count, void *ctx)
{
	unsigned *buckets = ctx, want = 0;
	double bound = strcmp(le, "+Inf") ? strtod(le, NULL) : INFINITY;

	for (size_t i = 0; i < N_SLOW; i++)
		want += !(slow[i] > bound);	/* NaN and -1 count as 0 */
	assert_true(count == want);
	(*buckets)++;
}

static void test_slow_callback_histogram(void **state)
{
	const char *names[] = { "s" };
	struct metrics *m = with_services(names, 1);
	struct json_object *j;
	unsigned buckets = 0;
	char *text;

	for (size_t i = 0; i < N_SLOW; i++)
		metrics_slow_callback(m, "s", LEVEL_MEDIUM, slow[i]);
	text = render(m);
	j = prometheus_parse(text);
	assert_true(each_bucket(j, "aiocopd_slow_callback_seconds_bucket", check_slow_bucket,
				&buckets) >= 8);
	assert_true(parsed(j, "aiocopd_slow_callback_seconds_count", "service", "s", NULL,
			   NULL) == N_SLOW);
	assert_true(parsed(j, "aiocopd_slow_callbacks_total", "service", "s", "level",
			   "medium") == N_SLOW);
	assert_string_equal(value_text(text, "aiocopd_slow_callback_seconds_sum{service=\"s\"}"),
			    "24.3300001");
	json_object_put(j);
	free(text);
	metrics_free(m);
}

/* The checker itself refuses what Prometheus would: it is able to fail this test. */
static void test_checker_refuses(void **state)
{
	static const char *const bad[] = {
		"# HELP x y\n# TYPE x gauge\nx{service=\"a\nb\"} 1\n",	/* raw newline */
		"x 1\n",						/* untyped */
		("# HELP aiocopd_build_info v\n# TYPE aiocopd_build_info gauge\n"
		 "aiocopd_build_info{version=\"1\"} 1\naiocopd_build_info{version=\"1\"} 1\n"),	/* twice */
	};
	char path[] = "/tmp/test_metrics.XXXXXX", cmd[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = mkstemp(path);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, bad[i], strlen(bad[i])), strlen(bad[i]));
		close(fd);
		snprintf(cmd, sizeof(cmd), CHECKER " %s >/dev/null 2>&1", path);
		assert_int_not_equal(system(cmd), 0);
		unlink(path);
		strcpy(path, "/tmp/test_metrics.XXXXXX");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_families_from_the_start),
		cmocka_unit_test(test_every_family),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_label_collision),
		cmocka_unit_test(test_bounded_by_configuration),
		cmocka_unit_test(test_loop_histogram),
		cmocka_unit_test(test_slow_callback_histogram),
		cmocka_unit_test(test_checker_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
