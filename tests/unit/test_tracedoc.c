/*
 * test_tracedoc.c - unit tests for src/tracedoc.c: the loop-time histogram and its
 * percentiles, grouping by entry point, the trace JSON and the Trace Event Format timeline,
 * and that one report renders the same in a JSON line, the trace document and the timeline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "tracedoc.h"

#define MS	1000000ull
#define FLAGS	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* A report of loop thread 101 of PID 100 that started at start_ns (CLOCK_MONOTONIC). */
static void make_span(struct report *r, uint64_t start_ns, double elapsed_ms)
{
	memset(r, 0, sizeof(*r));
	r->ts = 1764000000.0 + start_ns / 1e9;
	r->start_ns = start_ns;
	r->pid = 100;
	r->tid = 101;
	r->elapsed_ms = elapsed_ms;
	r->threshold_ms = 30;
	r->exceeded = true;
}

/* A task report that slept in one event. */
static void make_report(struct report *r, uint64_t start_ns, double elapsed_ms,
			const char *where, enum severity_level level)
{
	struct report_event *e;

	make_span(r, start_ns, elapsed_ms);
	r->level = level;
	r->score = level == LEVEL_HIGH ? 50 : level == LEVEL_MEDIUM ? 10 : 0;
	r->oncpu_ms = 1;
	r->offcpu_ms = elapsed_ms - 1;
	r->is_task = true;
	snprintf(r->task_name, sizeof(r->task_name), "worker");
	snprintf(r->coro, sizeof(r->coro), "work");
	snprintf(r->callback, sizeof(r->callback), "Task.__step");
	r->events = calloc(1, sizeof(*r->events));
	assert_non_null(r->events);
	r->n_events = 1;
	e = &r->events[0];
	snprintf(e->event, sizeof(e->event), "time.sleep(0.05)");
	e->category = CAT_SLEEP;
	e->severity = r->score;
	/* starts 1 ms in, and claims to run past the callback: the timeline must clip it */
	e->start_ns = start_ns + MS;
	e->duration_ms = elapsed_ms;
	e->syscall = "clock_nanosleep";
	e->entry_point = xstrdup(where);
	e->trace = xstrdup(where);
}

/* ---- histogram ----------------------------------------------------------------------------- */

static void test_bucket_bounds_contain_their_values(void **state)
{
	static const uint64_t samples[] = {
		0, 999, 1000, 15999, 16000, 16001, 19999, 20000, 31999, 32000, 47000, 1000000,
		30 * MS, 61 * MS, 999 * MS, 5000 * MS, 60000 * MS,
	};

	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		unsigned b = loop_hist_bucket(samples[i]);
		uint64_t lo, hi;

		assert_true(b < LOOP_HIST_BUCKETS);
		loop_hist_bounds(b, &lo, &hi);
		assert_true(lo <= samples[i]);
		assert_true(samples[i] < hi);
		/* at most a quarter of the bucket's lower bound wide, above 16 us */
		if (samples[i] >= 16000)
			assert_true(hi - lo <= lo / 4);
	}
}

static void test_buckets_are_monotonic_and_contiguous(void **state)
{
	uint64_t prev_hi = 0;

	(void)state;
	for (unsigned b = 0; b < LOOP_HIST_BUCKETS; b++) {
		uint64_t lo, hi;

		loop_hist_bounds(b, &lo, &hi);
		assert_int_equal(lo, prev_hi);
		assert_true(hi > lo);
		prev_hi = hi;
	}
}

static void test_percentiles(void **state)
{
	struct loop_stats s = { .max_busy_ns = 80 * MS };
	uint64_t p50, p90, p99;

	(void)state;
	/* 90 iterations of 5 us, 9 of 1 ms, one of 80 ms */
	s.hist[loop_hist_bucket(5000)] = 90;
	s.hist[loop_hist_bucket(1 * MS)] = 9;
	s.hist[loop_hist_bucket(80 * MS)] = 1;
	s.iterations = 100;
	p50 = loop_stats_percentile_ns(&s, 0.50);
	p90 = loop_stats_percentile_ns(&s, 0.90);
	p99 = loop_stats_percentile_ns(&s, 0.99);
	assert_true(p50 >= 5000 && p50 < 6000);
	assert_true(p90 >= 5000 && p90 < 6000);	/* the 90th of 100 is still a 5 us one */
	assert_true(p99 >= 875000 && p99 <= 1125000);
	assert_int_equal(loop_stats_percentile_ns(&s, 1.0), 80 * MS);	/* capped at the max */
}

static void test_percentile_of_nothing_is_zero(void **state)
{
	struct loop_stats s = { 0 };

	(void)state;
	assert_int_equal(loop_stats_percentile_ns(&s, 0.5), 0);
}

/* ---- documents ----------------------------------------------------------------------------- */

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

static struct json_object *build(struct tracedoc *d, enum tracedoc_format f)
{
	struct engine_options opt = { .threshold_ms = 30, .trace_depth = 20 };

	return tracedoc_build(d, tracedoc_metadata(&opt, 2, f, 1764000000.0, 1764000002.0,
						   "duration"), f);
}

static void add_reports(struct tracedoc *d, struct report *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tracedoc_add_report(d, &r[i]);
}

static void test_trace_json_reports_in_time_order_and_top(void **state)
{
	struct tracedoc d;
	struct report r[3];
	struct json_object *doc, *reports, *top, *loops;

	(void)state;
	assert_int_equal(tracedoc_init(&d, 0), 0);
	/* arrive out of order: two threads' callbacks finish in another order than they began */
	make_report(&r[0], 500 * MS, 60, "/srv/a.py:7:work", LEVEL_HIGH);
	make_report(&r[1], 100 * MS, 40, "/srv/b.py:3:other", LEVEL_MEDIUM);
	make_report(&r[2], 900 * MS, 70, "/srv/a.py:7:work", LEVEL_LOW);
	add_reports(&d, r, 3);
	doc = build(&d, TRACEDOC_JSON);
	assert_string_equal(json_object_get_string(get(doc, "format")), "aiocopd-trace");
	reports = get(doc, "reports");
	assert_int_equal(json_object_array_length(reports), 3);
	for (size_t i = 1; i < 3; i++)
		assert_true(json_object_get_double(get(json_object_array_get_idx(reports, i - 1),
							"ts")) <
			    json_object_get_double(get(json_object_array_get_idx(reports, i), "ts")));
	top = get(doc, "top");
	assert_int_equal(json_object_array_length(top), 2);
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(top, 0),
						       "entry_point")), "/srv/a.py:7:work");
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(top, 0), "count")), 2);
	assert_true(json_object_get_double(get(json_object_array_get_idx(top, 0), "total_ms")) ==
		    130.0);
	assert_true(json_object_get_double(get(json_object_array_get_idx(top, 0), "max_ms")) ==
		    70.0);
	assert_string_equal(json_object_get_string(get(json_object_array_get_idx(top, 0),
						       "highest_level")), "high");
	loops = get(doc, "loops");
	assert_int_equal(json_object_array_length(loops), 1);
	assert_int_equal(json_object_get_int(get(get(json_object_array_get_idx(loops, 0),
						     "slow_callbacks"), "high")), 1);
	assert_int_equal(json_object_get_int(get(get(doc, "lost"), "total")), 0);
	json_object_put(doc);
	for (size_t i = 0; i < 3; i++)
		report_free(&r[i]);
	tracedoc_free(&d);
}

/* A slow_iteration report of the loop make_report's reports run on. */
static void make_lag(struct report *r, uint64_t start_ns, double elapsed_ms, size_t callbacks)
{
	make_span(r, start_ns, elapsed_ms);
	r->slow_iteration = true;
	r->callbacks = callbacks;
	snprintf(r->callback, sizeof(r->callback), "<loop iteration>");
}

/* The loop's lag is one of the reports, but no callback: not in top, not counted by level. */
static void test_slow_iteration_is_a_report_not_a_callback(void **state)
{
	struct json_object *doc, *reports, *slow, *lag;
	struct report r[2];
	struct tracedoc d;

	(void)state;
	make_lag(&r[1], 300 * MS, 80, 300);
	make_report(&r[0], 100 * MS, 60, "/srv/a.py:7:work", LEVEL_HIGH);
	assert_int_equal(tracedoc_init(&d, 0), 0);
	add_reports(&d, r, 2);
	doc = build(&d, TRACEDOC_JSON);
	reports = get(doc, "reports");
	assert_int_equal(json_object_array_length(reports), 2);
	lag = json_object_array_get_idx(reports, 1);
	assert_string_equal(json_object_get_string(get(lag, "type")), "slow_iteration");
	assert_int_equal(json_object_get_int(get(lag, "callbacks")), 300);
	assert_int_equal(json_object_array_length(get(doc, "top")), 1);
	slow = get(json_object_array_get_idx(get(doc, "loops"), 0), "slow_callbacks");
	assert_int_equal(json_object_get_int(get(slow, "high")), 1);
	assert_int_equal(json_object_get_int(get(slow, "low")), 0);
	json_object_put(doc);
	for (size_t i = 0; i < 2; i++)
		report_free(&r[i]);
	tracedoc_free(&d);
}

/*
 * A target in its own PID namespace: its process entry and the trace's metadata name its
 * ns_pid, its loop the ns_tid its reports carry; exec's metadata, which names the command's
 * own pid, does not take the first Python's ns_pid.
 */
static struct json_object *ns_document(struct json_object *metadata_pid)
{
	struct engine_options opt = { .threshold_ms = 30, .trace_depth = 20 };
	struct py_target t = { .pid = getpid(), .version = "3.11.2",
			       .runtime_path = "/usr/bin/python3.11",
			       .layout_source = "built-in table", .place = { .ns_pid = 2 } };
	struct json_object *meta;
	struct tracedoc d;
	struct report r;

	assert_int_equal(tracedoc_init(&d, 0), 0);
	tracedoc_add_process(&d, &t);
	make_report(&r, 100 * MS, 60, "/app/a.py:7:work", LEVEL_HIGH);
	r.ns_pid = 2;
	r.ns_tid = 5;
	tracedoc_add_report(&d, &r);
	meta = tracedoc_metadata(&opt, 2, TRACEDOC_JSON, 1764000000.0, 1764000002.0, "duration");
	if (metadata_pid)
		json_object_object_add(meta, "pid", metadata_pid);
	meta = tracedoc_build(&d, meta, TRACEDOC_JSON);
	report_free(&r);
	tracedoc_free(&d);
	return meta;
}

static void test_ns_ids_in_document(void **state)
{
	struct json_object *doc = ns_document(NULL), *meta, *proc, *loop, *rep;

	(void)state;
	meta = get(doc, "metadata");
	proc = json_object_array_get_idx(get(meta, "processes"), 0);
	assert_int_equal(json_object_get_int(get(proc, "pid")), getpid());
	assert_int_equal(json_object_get_int(get(proc, "ns_pid")), 2);
	assert_int_equal(json_object_get_int(get(meta, "ns_pid")), 2);
	loop = json_object_array_get_idx(get(doc, "loops"), 0);
	assert_int_equal(json_object_get_int(get(loop, "tid")), 101);
	assert_int_equal(json_object_get_int(get(loop, "ns_tid")), 5);
	rep = json_object_array_get_idx(get(doc, "reports"), 0);
	assert_int_equal(json_object_get_int(get(rep, "ns_pid")), 2);
	assert_int_equal(json_object_get_int(get(rep, "ns_tid")), 5);
	json_object_put(doc);

	doc = ns_document(json_object_new_int(77));
	meta = get(doc, "metadata");
	assert_int_equal(json_object_get_int(get(meta, "pid")), 77);
	assert_false(json_object_object_get_ex(meta, "ns_pid", NULL));
	json_object_put(doc);
}

static bool inside(struct json_object *in, struct json_object *out)
{
	double ts = json_object_get_double(get(in, "ts")), dur = json_object_get_double(get(in, "dur"));
	double ots = json_object_get_double(get(out, "ts"));
	double odur = json_object_get_double(get(out, "dur"));

	return ots <= ts && ts + dur <= ots + odur + 1e-6;
}

static void test_chrome_slices_nest(void **state)
{
	struct event_iteration it = {
		.h = { .type = EVENT_ITERATION, .pid = 100, .tid = 101, .ts_ns = 1000 * MS - 2 * MS },
		.duration_ns = 70 * MS, .callbacks = 3,
	};
	struct json_object *doc, *events, *iter = NULL, *cb = NULL, *op = NULL;
	struct tracedoc d;
	struct report r;

	(void)state;
	assert_int_equal(tracedoc_init(&d, 900 * MS), 0);
	make_report(&r, 1000 * MS, 60, "/srv/a.py:7:work", LEVEL_HIGH);
	tracedoc_add_iteration(&d, &it);
	tracedoc_add_report(&d, &r);
	doc = build(&d, TRACEDOC_CHROME);
	events = get(doc, "traceEvents");
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		struct json_object *e = json_object_array_get_idx(events, i);
		const char *cat;

		if (strcmp(json_object_get_string(get(e, "ph")), "X"))
			continue;
		cat = json_object_get_string(get(e, "cat"));
		if (!strcmp(cat, "iteration"))
			iter = e;
		else if (!strcmp(cat, "callback"))
			cb = e;
		else
			op = e;
	}
	assert_non_null(iter);
	assert_non_null(cb);
	assert_non_null(op);
	/* microseconds from the origin */
	assert_true(json_object_get_double(get(cb, "ts")) == 100000.0);
	assert_true(json_object_get_double(get(cb, "dur")) == 60000.0);
	assert_string_equal(json_object_get_string(get(cb, "name")), "worker");
	assert_string_equal(json_object_get_string(get(op, "cat")), "sleep");
	assert_true(inside(cb, iter));
	assert_true(inside(op, cb));	/* clipped to its callback */
	json_object_put(doc);
	report_free(&r);
	tracedoc_free(&d);
}

/* SPEC: a report is the same object in a JSON line, a trace document and the timeline. */
static void test_same_report_in_every_rendering(void **state)
{
	struct json_object *line, *in_trace, *in_timeline = NULL, *trace_doc, *chrome_doc, *events;
	struct tracedoc d1, d2;
	struct report r;
	char *buf = NULL;
	size_t len = 0;
	FILE *mem;

	(void)state;
	make_report(&r, 1000 * MS, 61.2, "/srv/a.py:7:work", LEVEL_HIGH);
	mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	report_write_json(mem, &r);
	fclose(mem);
	line = json_tokener_parse(buf);
	assert_non_null(line);
	assert_int_equal(tracedoc_init(&d1, 0), 0);
	assert_int_equal(tracedoc_init(&d2, 0), 0);
	tracedoc_add_report(&d1, &r);
	tracedoc_add_report(&d2, &r);
	trace_doc = build(&d1, TRACEDOC_JSON);
	chrome_doc = build(&d2, TRACEDOC_CHROME);
	in_trace = json_object_array_get_idx(get(trace_doc, "reports"), 0);
	events = get(chrome_doc, "traceEvents");
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		struct json_object *e = json_object_array_get_idx(events, i), *args;

		if (json_object_object_get_ex(e, "args", &args) &&
		    json_object_object_get_ex(args, "report", &in_timeline))
			break;
	}
	assert_non_null(in_timeline);
	/* byte for byte: the line is the object's text and a newline */
	buf[strcspn(buf, "\n")] = 0;
	assert_string_equal(buf, json_object_to_json_string_ext(in_trace, FLAGS));
	assert_string_equal(buf, json_object_to_json_string_ext(in_timeline, FLAGS));
	json_object_put(line);
	json_object_put(trace_doc);
	json_object_put(chrome_doc);
	free(buf);
	report_free(&r);
	tracedoc_free(&d1);
	tracedoc_free(&d2);
}

static void test_document_limit_is_counted(void **state)
{
	struct tracedoc d;
	struct report r;

	(void)state;
	assert_int_equal(tracedoc_init(&d, 0), 0);
	make_report(&r, 1000 * MS, 60, "/srv/a.py:7:work", LEVEL_HIGH);
	for (size_t i = 0; i < TRACEDOC_MAX_REPORTS + 5; i++)
		tracedoc_add_report(&d, &r);
	assert_int_equal(json_object_array_length(d.reports), TRACEDOC_MAX_REPORTS);
	assert_true(d.lost_document >= 5);
	assert_int_equal(d.top[0].count, TRACEDOC_MAX_REPORTS + 5);
	report_free(&r);
	tracedoc_free(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_bounds_contain_their_values),
		cmocka_unit_test(test_buckets_are_monotonic_and_contiguous),
		cmocka_unit_test(test_percentiles),
		cmocka_unit_test(test_percentile_of_nothing_is_zero),
		cmocka_unit_test(test_trace_json_reports_in_time_order_and_top),
		cmocka_unit_test(test_slow_iteration_is_a_report_not_a_callback),
		cmocka_unit_test(test_ns_ids_in_document),
		cmocka_unit_test(test_chrome_slices_nest),
		cmocka_unit_test(test_same_report_in_every_rendering),
		cmocka_unit_test(test_document_limit_is_counted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
