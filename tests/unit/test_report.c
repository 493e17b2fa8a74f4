/*
 * test_report.c - unit tests for src/report.c.
 *
 * Reports are built by hand (task and plain-callback variants, with and without blocking
 * events) and checked against SPEC section 3 (JSON keys, types and values, read back with
 * json-c accessors) and section 2 (the text block). JSON lines are captured through
 * open_memstream, checked byte by byte (one line, UTF-8, no raw control characters) with a
 * validator written here, then parsed with json-c in strict, UTF-8-validating mode.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pty.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "report.h"

/* ---- fixtures -------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* The report of SPEC sections 2 and 3: a task that slept 60 ms in time.sleep. */
static void make_sleeper(struct report *r)
{
	struct report_event *e;

	memset(r, 0, sizeof(*r));
	r->ts = 1764000000.123456;
	r->pid = 4242;
	r->tid = 4243;
	r->elapsed_ms = 61.2;
	r->threshold_ms = 30;
	r->exceeded = true;
	r->score = 50;
	r->level = LEVEL_HIGH;
	r->oncpu_ms = 0.4;
	r->offcpu_ms = 60.8;
	r->is_task = true;
	snprintf(r->task_name, sizeof(r->task_name), "the-sleeper");
	snprintf(r->coro, sizeof(r->coro), "sleeper");
	snprintf(r->callback, sizeof(r->callback), "Task.__step");
	r->events = calloc(1, sizeof(*r->events));
	assert_non_null(r->events);
	r->n_events = 1;
	e = &r->events[0];
	snprintf(e->event, sizeof(e->event), "time.sleep(0.06)");
	e->category = CAT_SLEEP;
	e->severity = 50;
	e->duration_ms = 60.1;
	e->syscall = "clock_nanosleep";
	e->entry_point = xstrdup("/srv/app.py:7:sleeper");
	e->trace = xstrdup("/srv/app.py:7:sleeper <- /usr/lib/python3.11/asyncio/events.py:80:_run"
			   " <- /usr/lib/python3.11/asyncio/base_events.py:1922:_run_once <- ...");
}

/* A plain call_soon callback that only burned CPU. */
static void make_cpu_callback(struct report *r)
{
	memset(r, 0, sizeof(*r));
	r->ts = 1764000001.5;
	r->pid = 77;
	r->tid = 78;
	r->elapsed_ms = 45.25;
	r->threshold_ms = 30;
	r->exceeded = true;
	r->score = 0;
	r->level = LEVEL_LOW;
	r->oncpu_ms = 45.0;
	r->offcpu_ms = 0.25;
	r->is_task = false;
	snprintf(r->callback, sizeof(r->callback), "Worker.tick");
	r->events = NULL;
	r->n_events = 0;
}

/* A plain callback with two events, the second Python-level only (no syscall). */
static void make_callback_two_events(struct report *r)
{
	struct report_event *e;

	memset(r, 0, sizeof(*r));
	r->ts = 1764000002.000001;
	r->pid = 10;
	r->tid = 11;
	r->elapsed_ms = 12.5;
	r->threshold_ms = 30;
	r->exceeded = false;
	r->score = 11;
	r->level = LEVEL_MEDIUM;
	r->oncpu_ms = 2;
	r->offcpu_ms = 10.5;
	snprintf(r->callback, sizeof(r->callback), "Handler.on_data.<locals>.cb");
	r->events = calloc(2, sizeof(*r->events));
	assert_non_null(r->events);
	r->n_events = 2;
	e = &r->events[0];
	snprintf(e->event, sizeof(e->event), "open(/srv/data.txt, r)");
	e->category = CAT_FILE;
	e->severity = 10;
	e->duration_ms = 9.875;
	e->syscall = "openat";
	e->entry_point = xstrdup("/srv/handler.py:31:cb");
	e->trace = xstrdup("/srv/handler.py:31:cb");
	e = &r->events[1];
	snprintf(e->event, sizeof(e->event), "os.kill(4242, 15)");
	e->category = CAT_OTHER;
	e->severity = 1;
	e->duration_ms = 0;
	e->syscall = NULL;
	e->entry_point = xstrdup("/srv/handler.py:32:cb");
	e->trace = xstrdup("/srv/handler.py:32:cb");
}

/* ---- helpers --------------------------------------------------------------------------- */

/* Captures what fn writes for r. The caller frees the buffer. */
static char *capture(void (*fn)(FILE *, const struct report *), const struct report *r,
		     size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	fn(f, r);
	assert_int_equal(fclose(f), 0);
	assert_non_null(buf);
	*len = n;
	return buf;
}

/* Independent RFC 3629 check: well-formed, shortest form, no surrogates, <= U+10FFFF. */
static const char *utf8_error(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp;
		size_t len;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			cp = c & 0x07;
		} else {
			return "invalid lead byte";
		}
		if (i + len > n)
			return "truncated sequence";
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return "bad continuation byte";
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
			return "overlong sequence";
		if (cp >= 0xd800 && cp <= 0xdfff)
			return "surrogate";
		if (cp > 0x10ffff)
			return "beyond U+10FFFF";
		i += len;
	}
	return NULL;
}

/*
 * Checks that buf is exactly one JSON line (RFC 8259: UTF-8, no raw control characters in
 * it) and returns the parsed object, which the caller puts.
 */
static struct json_object *parse_one_line(const char *buf, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o;
	const char *err;

	assert_true(len >= 2);
	assert_int_equal(buf[len - 1], '\n');
	assert_null(memchr(buf, 0, len));		/* no NUL inside */
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)buf[i] < 0x20)
			fail_msg("raw control byte 0x%02x at offset %zu of the JSON line",
				 (unsigned char)buf[i], i);
	err = utf8_error((const unsigned char *)buf, len);
	if (err) {
		char shown[4096];
		size_t used = 0;

		/* show the line with its non-ASCII bytes as \xNN, not raw to the terminal */
		for (size_t i = 0; i + 1 < len && used + 5 < sizeof(shown); i++)
			used += snprintf(shown + used, sizeof(shown) - used,
					 (unsigned char)buf[i] < 0x80 ? "%c" : "\\x%02x",
					 (unsigned char)buf[i]);
		fail_msg("JSON line is not valid UTF-8 (%s): %s", err, shown);
	}

	tok = json_tokener_new();
	assert_non_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, buf, (int)len - 1);
	if (json_tokener_get_error(tok) != json_tokener_success)
		fail_msg("json-c rejects the line: %s",
			 json_tokener_error_desc(json_tokener_get_error(tok)));
	assert_int_equal(json_tokener_get_parse_end(tok), len - 1);	/* nothing after it */
	json_tokener_free(tok);
	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	return o;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("key \"%s\" missing", key);
	return v;
}

static struct json_object *get_typed(struct json_object *o, const char *key, json_type t)
{
	struct json_object *v = get(o, key);

	if (!json_object_is_type(v, t))
		fail_msg("key \"%s\": type %s, want %s", key,
			 json_type_to_name(json_object_get_type(v)), json_type_to_name(t));
	return v;
}

static double get_number(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
		fail_msg("key \"%s\": type %s, want a number", key,
			 json_type_to_name(json_object_get_type(v)));
	return json_object_get_double(v);
}

static const char *get_string(struct json_object *o, const char *key)
{
	return json_object_get_string(get_typed(o, key, json_type_string));
}

static void assert_close(double got, double want, double eps)
{
	if (!(fabs(got - want) <= eps))
		fail_msg("%.9f, want %.9f", got, want);
}

/* Every top-level key of SPEC section 3 with its type; returns the blocking_events array. */
static struct json_object *check_top_level(struct json_object *o)
{
	struct json_object *events, *task;

	assert_string_equal(get_string(o, "type"), "slow_task");
	get_number(o, "ts");
	get_typed(o, "pid", json_type_int);
	get_typed(o, "tid", json_type_int);
	get_number(o, "elapsed_ms");
	get_number(o, "threshold_ms");
	get_typed(o, "exceeded_threshold", json_type_boolean);
	get_typed(o, "severity_score", json_type_int);
	get_string(o, "severity_level");
	get_string(o, "reason");
	get_number(o, "on_cpu_ms");
	get_number(o, "off_cpu_ms");
	task = get(o, "task");
	assert_true(task == NULL || json_object_is_type(task, json_type_object));
	get_string(o, "callback");
	events = get_typed(o, "blocking_events", json_type_array);
	for (size_t i = 0; i < json_object_array_length(events); i++) {
		struct json_object *e = json_object_array_get_idx(events, i), *sc;

		assert_true(json_object_is_type(e, json_type_object));
		get_string(e, "event");
		get_string(e, "category");
		get_typed(e, "severity", json_type_int);
		get_number(e, "duration_ms");
		sc = get(e, "syscall");
		assert_true(sc == NULL || json_object_is_type(sc, json_type_string));
		get_string(e, "entry_point");
		get_string(e, "trace");
	}
	return events;
}

/* ---- report_to_json -------------------------------------------------------------------- */

static void test_json_task_with_event(void **state)
{
	struct report r;
	struct json_object *o, *events, *e, *task;

	make_sleeper(&r);
	o = report_to_json(&r);
	assert_non_null(o);
	events = check_top_level(o);

	assert_close(get_number(o, "ts"), 1764000000.123456, 1e-6);
	assert_int_equal(json_object_get_int(get(o, "pid")), 4242);
	assert_int_equal(json_object_get_int(get(o, "tid")), 4243);
	assert_close(get_number(o, "elapsed_ms"), 61.2, 1e-9);
	assert_close(get_number(o, "threshold_ms"), 30, 1e-9);
	assert_true(json_object_get_boolean(get(o, "exceeded_threshold")));
	assert_int_equal(json_object_get_int(get(o, "severity_score")), 50);
	assert_string_equal(get_string(o, "severity_level"), "high");
	assert_string_equal(get_string(o, "reason"), "io_blocking");
	assert_close(get_number(o, "on_cpu_ms"), 0.4, 1e-9);
	assert_close(get_number(o, "off_cpu_ms"), 60.8, 1e-9);

	task = get_typed(o, "task", json_type_object);
	assert_string_equal(get_string(task, "name"), "the-sleeper");
	assert_string_equal(get_string(task, "coro"), "sleeper");
	assert_string_equal(get_string(o, "callback"), "Task.__step");

	assert_int_equal(json_object_array_length(events), 1);
	e = json_object_array_get_idx(events, 0);
	assert_string_equal(get_string(e, "event"), "time.sleep(0.06)");
	assert_string_equal(get_string(e, "category"), "sleep");
	assert_int_equal(json_object_get_int(get(e, "severity")), 50);
	assert_close(get_number(e, "duration_ms"), 60.1, 1e-9);
	assert_string_equal(get_string(e, "syscall"), "clock_nanosleep");
	assert_string_equal(get_string(e, "entry_point"), "/srv/app.py:7:sleeper");
	assert_string_equal(get_string(e, "trace"), r.events[0].trace);

	json_object_put(o);
	report_free(&r);
	assert_null(r.events);
	assert_int_equal(r.n_events, 0);
}

static void test_json_plain_callback_cpu(void **state)
{
	struct report r;
	struct json_object *o, *events;

	make_cpu_callback(&r);
	o = report_to_json(&r);
	events = check_top_level(o);
	assert_null(get(o, "task"));				/* present, and null */
	assert_string_equal(get_string(o, "callback"), "Worker.tick");
	assert_string_equal(get_string(o, "reason"), "cpu_blocking");
	assert_string_equal(get_string(o, "severity_level"), "low");
	assert_int_equal(json_object_get_int(get(o, "severity_score")), 0);
	assert_int_equal(json_object_array_length(events), 0);
	assert_int_equal(json_object_get_int(get(o, "pid")), 77);
	assert_close(get_number(o, "ts"), 1764000001.5, 1e-6);
	assert_close(get_number(o, "elapsed_ms"), 45.25, 1e-9);
	assert_close(get_number(o, "on_cpu_ms"), 45.0, 1e-9);
	assert_close(get_number(o, "off_cpu_ms"), 0.25, 1e-9);
	json_object_put(o);
	report_free(&r);
}

static void test_json_task_without_events(void **state)
{
	struct report r;
	struct json_object *o, *task;

	make_sleeper(&r);
	report_free(&r);	/* drop the event */
	r.score = 0;
	r.level = LEVEL_LOW;
	o = report_to_json(&r);
	assert_int_equal(json_object_array_length(check_top_level(o)), 0);
	/* off CPU for 60.8 of its 61.2 ms, in nothing aiocopd named */
	assert_string_equal(get_string(o, "reason"), "waiting");
	task = get_typed(o, "task", json_type_object);
	assert_string_equal(get_string(task, "name"), "the-sleeper");
	json_object_put(o);
}

/* SPEC section 3, reason: where the callback's time went. */
static void test_reason_from_where_time_went(void **state)
{
	struct report r;

	make_sleeper(&r);
	assert_string_equal(report_reason(&r), "io_blocking");
	r.gc_ms = 30.6;		/* half of 61.2: the collection, even with an event */
	assert_string_equal(report_reason(&r), "gc");
	r.gc_ms = 30.5;
	assert_string_equal(report_reason(&r), "io_blocking");
	report_free(&r);
	r.gc_ms = 0;
	r.oncpu_ms = 31;
	r.offcpu_ms = 30.2;
	assert_string_equal(report_reason(&r), "cpu_blocking");
	r.oncpu_ms = 1.2;
	r.offcpu_ms = 60;
	r.preempted_ms = 30;	/* waited for a CPU as long as it slept */
	assert_string_equal(report_reason(&r), "preempted");
	r.preempted_ms = 29.9;
	assert_string_equal(report_reason(&r), "waiting");
}

/* SPEC section 3: the loop's lag is its own object, with the callbacks that took most of it. */
static void test_json_slow_iteration(void **state)
{
	struct report r = { .ts = 1764000002.25, .pid = 4242, .tid = 4242, .elapsed_ms = 80.5,
			    .threshold_ms = 30, .slow_iteration = true, .callbacks = 300,
			    .n_top = 2 };
	struct json_object *o, *top, *t0, *t1;
	char text[4096] = "";
	FILE *out;

	r.top[0] = (struct report_top){ .is_task = true, .task_name = "Task-7", .coro = "tick",
					.callback = "Task.__step", .ms = 2.5 };
	r.top[0].entry_point = strdup("/srv/app.py:9:tick");
	r.top[1] = (struct report_top){ .callback = "Server.on_timer", .ms = 1.25 };
	r.top[1].entry_point = strdup("/srv/app.py:20:on_timer");
	o = report_to_json(&r);
	assert_string_equal(get_string(o, "type"), "slow_iteration");
	assert_int_equal(json_object_get_int(get(o, "callbacks")), 300);
	assert_true(json_object_get_double(get(o, "elapsed_ms")) == 80.5);
	assert_false(json_object_object_get_ex(o, "blocking_events", NULL));
	assert_false(json_object_object_get_ex(o, "severity_level", NULL));
	top = get_typed(o, "top", json_type_array);
	assert_int_equal(json_object_array_length(top), 2);
	t0 = json_object_array_get_idx(top, 0);
	t1 = json_object_array_get_idx(top, 1);
	assert_string_equal(get_string(get_typed(t0, "task", json_type_object), "name"), "Task-7");
	assert_string_equal(get_string(t0, "entry_point"), "/srv/app.py:9:tick");
	assert_true(json_object_get_double(get(t0, "ms")) == 2.5);
	assert_null(get(t1, "task"));
	assert_string_equal(get_string(t1, "callback"), "Server.on_timer");
	json_object_put(o);
	out = fmemopen(text, sizeof(text) - 1, "w");
	assert_non_null(out);
	report_write_text(out, &r, false);
	fclose(out);
	assert_non_null(strstr(text, "SLOW LOOP ITERATION: 80.5ms"));
	assert_non_null(strstr(text, "300 callback(s) seen"));
	assert_non_null(strstr(text, "task 'Task-7' coro tick  ~2.5ms  at "));
	report_free(&r);
}

static void test_json_callback_events_syscall_null(void **state)
{
	struct report r;
	struct json_object *o, *events, *e0, *e1;

	make_callback_two_events(&r);
	o = report_to_json(&r);
	events = check_top_level(o);
	assert_null(get(o, "task"));
	assert_string_equal(get_string(o, "callback"), "Handler.on_data.<locals>.cb");
	assert_string_equal(get_string(o, "reason"), "io_blocking");
	assert_string_equal(get_string(o, "severity_level"), "medium");
	assert_int_equal(json_object_get_int(get(o, "severity_score")), 11);
	assert_false(json_object_get_boolean(get(o, "exceeded_threshold")));
	assert_close(get_number(o, "ts"), 1764000002.000001, 1e-6);
	assert_int_equal(json_object_array_length(events), 2);

	e0 = json_object_array_get_idx(events, 0);
	assert_string_equal(get_string(e0, "category"), "file");
	assert_string_equal(get_string(e0, "syscall"), "openat");
	assert_close(get_number(e0, "duration_ms"), 9.875, 1e-9);

	e1 = json_object_array_get_idx(events, 1);
	assert_string_equal(get_string(e1, "event"), "os.kill(4242, 15)");
	assert_string_equal(get_string(e1, "category"), "other");
	assert_int_equal(json_object_get_int(get(e1, "severity")), 1);
	assert_null(get(e1, "syscall"));			/* present, and null */
	assert_close(get_number(e1, "duration_ms"), 0, 1e-9);
	json_object_put(o);
	report_free(&r);
}

static void test_json_all_categories(void **state)
{
	static const char *const names[] = {
		[CAT_SLEEP] = "sleep", [CAT_FILE] = "file", [CAT_NETWORK] = "network",
		[CAT_DNS] = "dns", [CAT_SUBPROCESS] = "subprocess", [CAT_DATABASE] = "database",
		[CAT_LOCK] = "lock", [CAT_OTHER] = "other",
	};
	struct report r;
	struct json_object *o, *events;

	make_sleeper(&r);
	report_free(&r);
	r.events = calloc(CAT_OTHER + 1, sizeof(*r.events));
	assert_non_null(r.events);
	r.n_events = CAT_OTHER + 1;
	for (int c = CAT_SLEEP; c <= CAT_OTHER; c++)
		r.events[c].category = (enum category)c;
	o = report_to_json(&r);
	events = check_top_level(o);
	for (int c = CAT_SLEEP; c <= CAT_OTHER; c++)
		assert_string_equal(get_string(json_object_array_get_idx(events, c), "category"),
				    names[c]);
	json_object_put(o);
	report_free(&r);
}

static void test_json_levels(void **state)
{
	static const struct { enum severity_level l; const char *s; } cases[] = {
		{ LEVEL_LOW, "low" }, { LEVEL_MEDIUM, "medium" }, { LEVEL_HIGH, "high" },
	};
	struct report r;

	make_cpu_callback(&r);
	for (size_t i = 0; i < 3; i++) {
		struct json_object *o;

		r.level = cases[i].l;
		o = report_to_json(&r);
		assert_string_equal(get_string(o, "severity_level"), cases[i].s);
		json_object_put(o);
	}
}

/* ---- report_write_json ----------------------------------------------------------------- */

static void test_write_json_one_line(void **state)
{
	struct report r;
	struct json_object *o, *e;
	size_t len;
	char *buf;

	make_sleeper(&r);
	buf = capture(report_write_json, &r, &len);
	assert_non_null(memchr(buf, '\n', len));
	assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);	/* exactly one line */
	o = parse_one_line(buf, len);
	check_top_level(o);
	assert_close(get_number(o, "elapsed_ms"), 61.2, 1e-9);
	assert_close(get_number(o, "ts"), 1764000000.123456, 1e-6);
	e = json_object_array_get_idx(get(o, "blocking_events"), 0);
	assert_string_equal(get_string(e, "event"), "time.sleep(0.06)");
	/* paths are written as they are, not with escaped slashes */
	assert_non_null(strstr(buf, "\"/srv/app.py:7:sleeper\""));
	json_object_put(o);
	free(buf);
	report_free(&r);

	make_cpu_callback(&r);
	buf = capture(report_write_json, &r, &len);
	assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
	o = parse_one_line(buf, len);
	assert_null(get(o, "task"));
	json_object_put(o);
	free(buf);
}

static void test_write_json_two_reports_two_lines(void **state)
{
	struct report a, b;
	char *buf = NULL, *nl;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	struct json_object *o;

	assert_non_null(f);
	make_sleeper(&a);
	make_cpu_callback(&b);
	report_write_json(f, &a);
	report_write_json(f, &b);
	assert_int_equal(fclose(f), 0);
	nl = memchr(buf, '\n', n);
	assert_non_null(nl);
	o = parse_one_line(buf, (size_t)(nl - buf) + 1);
	assert_non_null(get_typed(o, "task", json_type_object));
	json_object_put(o);
	o = parse_one_line(nl + 1, n - (size_t)(nl + 1 - buf));
	assert_null(get(o, "task"));
	json_object_put(o);
	free(buf);
	report_free(&a);
}

/* Hostile but valid-UTF-8 strings must round-trip exactly through the JSON line. */
static void test_write_json_escapes_hostile_strings(void **state)
{
	static const char hostile[] = "a\"b\\c\nd\re\tf\bg\fh\x01i\x1fj\x7fk/l</script>m'n"
				      "\xc3\xa9\xe2\x82\xac\xf0\x9f\x90\x8d";
	static const char trace[] = "/srv/we\"ird\\dir/app.py:7:f <- /srv/x\ny.py:1:<module>";
	struct report r;
	struct json_object *o, *task, *e;
	size_t len;
	char *buf;

	make_sleeper(&r);
	snprintf(r.task_name, sizeof(r.task_name), "%s", hostile);
	assert_string_equal(r.task_name, hostile);		/* fits */
	snprintf(r.coro, sizeof(r.coro), "%s", "co\"ro\\\n");
	snprintf(r.callback, sizeof(r.callback), "%s", "cb\x02\x03\"");
	snprintf(r.events[0].event, sizeof(r.events[0].event), "open(%s)", hostile);
	free(r.events[0].entry_point);
	free(r.events[0].trace);
	r.events[0].entry_point = xstrdup("/srv/we\"ird\\dir/app.py:7:f");
	r.events[0].trace = xstrdup(trace);

	buf = capture(report_write_json, &r, &len);
	assert_ptr_equal(memchr(buf, '\n', len), buf + len - 1);
	o = parse_one_line(buf, len);
	check_top_level(o);
	task = get_typed(o, "task", json_type_object);
	assert_string_equal(get_string(task, "name"), hostile);
	assert_string_equal(get_string(task, "coro"), "co\"ro\\\n");
	assert_string_equal(get_string(o, "callback"), "cb\x02\x03\"");
	e = json_object_array_get_idx(get(o, "blocking_events"), 0);
	assert_string_equal(get_string(e, "event"), r.events[0].event);
	assert_string_equal(get_string(e, "entry_point"), "/srv/we\"ird\\dir/app.py:7:f");
	assert_string_equal(get_string(e, "trace"), trace);
	json_object_put(o);
	free(buf);
	report_free(&r);
}

/*
 * Bytes that are not UTF-8 in the task name (CPython keeps non-ASCII one-byte-kind strings
 * as Latin-1, which is what BPF copies for a task named "café") must still give a valid
 * JSON line. What they become is not fixed here; that the line is JSON is.
 */
/* What one test owns, freed by teardown even when an assertion jumps out of the test. */
struct owned {
	struct report r;
	char *buf;
	struct json_object *o;
};

static int owned_setup(void **state)
{
	*state = calloc(1, sizeof(struct owned));
	return *state ? 0 : -1;
}

static void owned_release(struct owned *w)
{
	report_free(&w->r);
	free(w->buf);
	w->buf = NULL;
	json_object_put(w->o);
	w->o = NULL;
}

static int owned_teardown(void **state)
{
	owned_release(*state);
	free(*state);
	return 0;
}

static void test_write_json_invalid_utf8_task_name(void **state)
{
	static const char *const names[] = {
		"caf\xe9",			/* Latin-1 é */
		"\xff\xfe\xfd",			/* never valid */
		"tail\xe2\x82",			/* truncated 3-byte sequence */
		"\xc0\xafslash",		/* overlong '/' */
		"\xed\xa0\x80surrogate",	/* encoded surrogate */
		"\x80lead",			/* lone continuation byte */
	};
	struct owned *w = *state;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct json_object *task;
		const char *name;
		size_t len;

		make_sleeper(&w->r);
		snprintf(w->r.task_name, sizeof(w->r.task_name), "%s", names[i]);
		w->buf = capture(report_write_json, &w->r, &len);
		assert_ptr_equal(memchr(w->buf, '\n', len), w->buf + len - 1);
		w->o = parse_one_line(w->buf, len);
		task = get_typed(w->o, "task", json_type_object);
		name = get_string(task, "name");
		assert_null(utf8_error((const unsigned char *)name, strlen(name)));
		assert_string_equal(get_string(task, "coro"), "sleeper");
		owned_release(w);
	}
}

/* ---- report_write_text ----------------------------------------------------------------- */

/* Text as written to a file or pipe: no colour. */
static void write_text_plain(FILE *out, const struct report *r)
{
	report_write_text(out, r, false);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("text output lacks \"%s\":\n%s", needle, hay);
}

/* A target in its own PID namespace: the ids it sees follow the host's, only then. */
static void test_ns_ids_only_when_they_differ(void **state)
{
	struct report r;
	struct json_object *o;
	size_t len;
	char *buf;

	make_sleeper(&r);
	o = report_to_json(&r);
	assert_false(json_object_object_get_ex(o, "ns_pid", NULL));
	assert_false(json_object_object_get_ex(o, "ns_tid", NULL));
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "pid 4242 tid 4243  task 'the-sleeper'");
	free(buf);

	r.ns_pid = 2;
	r.ns_tid = 7;
	o = report_to_json(&r);
	assert_int_equal(json_object_get_int(get(o, "pid")), 4242);
	assert_int_equal(json_object_get_int(get(o, "tid")), 4243);
	assert_int_equal(json_object_get_int(get(o, "ns_pid")), 2);
	assert_int_equal(json_object_get_int(get(o, "ns_tid")), 7);
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "pid 4242 tid 4243 (pid 2 tid 7 in its namespace)  task 'the-sleeper'");
	free(buf);
	report_free(&r);
}

static void test_text_task_shape(void **state)
{
	struct report r;
	size_t len;
	char *buf;

	make_sleeper(&r);
	buf = capture(write_text_plain, &r, &len);
	assert_int_equal(strncmp(buf, "SLOW TASK DETECTED: 61.2ms  (threshold 30ms)", 44), 0);
	assert_contains(buf, "pid 4242 tid 4243");
	assert_contains(buf, "task 'the-sleeper' coro sleeper\n");
	assert_contains(buf, "\n  Severity: high (score 50)  reason: io_blocking  "
			     "on-cpu 0.4ms  off-cpu 60.8ms\n");
	assert_contains(buf, "\n  Blocking events: 1\n");
	assert_contains(buf, "\n  - time.sleep(0.06)  [sleep, 60.1ms]  at app.py:7:sleeper\n");
	assert_contains(buf, "\n      app.py:7:sleeper <- events.py:80:_run <- "
			     "base_events.py:1922:_run_once <- ...\n");
	/* the block ends with an empty line */
	assert_true(len >= 2 && buf[len - 1] == '\n' && buf[len - 2] == '\n');
	free(buf);
	report_free(&r);
}

/*
 * A task name chosen by the target: a newline that would forge a report line, ESC and OSC
 * that would recolour the terminal and set its title, BEL, a C1 control and a stray byte.
 */
static size_t count_lines(const char *buf, size_t len)
{
	size_t lines = 0;

	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	return lines;
}

static void test_text_escapes_target_strings(void **state)
{
	struct report r;
	size_t len, lines;
	char *buf;

	make_sleeper(&r);
	buf = capture(write_text_plain, &r, &len);
	lines = count_lines(buf, len);
	free(buf);
	snprintf(r.task_name, sizeof(r.task_name),
		 "x\nSLOW TASK DETECTED: 999ms\x1b[31m\x1b]0;pwned\x07\xc2\x9b\xff\\");
	snprintf(r.events[0].event, sizeof(r.events[0].event), "open(/tmp/a\rb)");
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "task 'x\\x0aSLOW TASK DETECTED: 999ms\\x1b[31m\\x1b]0;pwned"
			     "\\x07\\u009b\\xff\\\\' coro sleeper\n");
	assert_contains(buf, "  - open(/tmp/a\\x0db)  [sleep");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];

		assert_false(c < 0x20 && c != '\n');	/* no raw control character */
		assert_false(c == 0x7f || c == 0xff);
	}
	/* as many lines as the same report with a plain name: nothing forged */
	assert_int_equal(count_lines(buf, len), lines);
	free(buf);
	report_free(&r);
}

static void test_text_plain_callback(void **state)
{
	struct report r;
	size_t len;
	char *buf;

	make_cpu_callback(&r);
	buf = capture(write_text_plain, &r, &len);
	assert_int_equal(strncmp(buf, "SLOW CALLBACK DETECTED: 45.2ms  (threshold 30ms)", 48), 0);
	assert_contains(buf, "callback Worker.tick\n");
	assert_contains(buf, "Severity: low (score 0)  reason: cpu_blocking");
	assert_contains(buf, "\n  Blocking events: 0\n");
	assert_null(strstr(buf, "\n  - "));
	assert_null(strstr(buf, "task '"));
	free(buf);
}

/* Two sampled stacks on a CPU-bound callback: in JSON and text, most frequent first. */
static void add_cpu_stacks(struct report *r)
{
	r->cpu[0] = (struct report_cpu_stack){ xstrdup("/srv/app.py:20:crunch"),
		xstrdup("/srv/app.py:20:crunch <- /srv/app.py:31:step"), 7, false };
	r->cpu[1] = (struct report_cpu_stack){ xstrdup("/srv/app.py:21:crunch"),
		xstrdup("/srv/app.py:21:crunch <- /srv/app.py:31:step"), 2, true };
	r->n_cpu = 2;
	r->cpu_samples = 9;
}

static void test_cpu_samples(void **state)
{
	struct json_object *o, *list, *first;
	struct report r;
	size_t len;
	char *buf;

	make_cpu_callback(&r);
	add_cpu_stacks(&r);
	o = report_to_json(&r);
	assert_true(json_object_object_get_ex(o, "cpu_samples", &list));
	assert_int_equal(json_object_array_length(list), 2);
	first = json_object_array_get_idx(list, 0);
	assert_string_equal(json_object_get_string(json_object_object_get(first, "entry_point")),
			    "/srv/app.py:20:crunch");
	assert_string_equal(json_object_get_string(json_object_object_get(first, "trace")),
			    "/srv/app.py:20:crunch <- /srv/app.py:31:step");
	assert_int_equal(json_object_get_int(json_object_object_get(first, "count")), 7);
	assert_int_equal(json_object_get_int(json_object_object_get(
				json_object_array_get_idx(list, 1), "count")), 2);
	assert_false(json_object_get_boolean(json_object_object_get(first, "trace_truncated")));
	assert_true(json_object_get_boolean(json_object_object_get(
				json_object_array_get_idx(list, 1), "trace_truncated")));
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "\n  CPU samples: 9\n  - 7 sample(s)  at app.py:20:crunch\n"
			     "      app.py:20:crunch <- app.py:31:step\n  - 2 sample(s)");
	free(buf);
	report_free(&r);
}

/*
 * A report that could not show everything says so: a stack deeper than its frames shown, and
 * operations over the per-callback limits, in text and in JSON (issue 9 items 2 and 6).
 */
static void test_cut_report_says_so(void **state)
{
	struct json_object *o, *e;
	struct report r;
	size_t len;
	char *buf;

	make_sleeper(&r);
	r.events[0].trace_cut = true;
	r.omitted = 4946;
	r.omitted_ms = 9.512;
	o = report_to_json(&r);
	e = json_object_array_get_idx(get(o, "blocking_events"), 0);
	assert_true(json_object_get_boolean(get_typed(e, "trace_truncated", json_type_boolean)));
	assert_int_equal(json_object_get_int64(get_typed(o, "omitted_operations", json_type_int)),
			 4946);
	assert_close(get_number(o, "omitted_ms"), 9.512, 1e-9);
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "\n  Blocking events: 1  (and 4946 more operation(s), 9.5ms, "
			     "not itemised: over the per-callback limit)\n");
	assert_contains(buf, "base_events.py:1922:_run_once <- ...  [stack cut: deeper than "
			     "shown]\n");
	free(buf);
	report_free(&r);
}

/* A report that shows everything says that too: nothing omitted, no stack cut. */
static void test_whole_report_says_nothing_cut(void **state)
{
	struct json_object *o, *e;
	struct report r;
	size_t len;
	char *buf;

	make_sleeper(&r);
	o = report_to_json(&r);
	e = json_object_array_get_idx(get(o, "blocking_events"), 0);
	assert_false(json_object_get_boolean(get_typed(e, "trace_truncated", json_type_boolean)));
	assert_int_equal(json_object_get_int64(get_typed(o, "omitted_operations", json_type_int)),
			 0);
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_null(strstr(buf, "not itemised"));
	assert_null(strstr(buf, "stack cut"));
	free(buf);
	report_free(&r);
}

static void test_gc_ms(void **state)
{
	struct json_object *o, *v;
	struct report r;
	size_t len;
	char *buf;

	make_cpu_callback(&r);
	o = report_to_json(&r);
	assert_true(json_object_object_get_ex(o, "gc_ms", &v));
	assert_true(json_object_get_double(v) == 0);
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_null(strstr(buf, " gc "));	/* nothing to say when nothing was collected */
	free(buf);
	r.gc_ms = 12.25;
	o = report_to_json(&r);
	assert_true(json_object_object_get_ex(o, "gc_ms", &v));
	assert_true(json_object_get_double(v) == 12.25);
	json_object_put(o);
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "ms  gc 12.2ms\n");
	free(buf);
	report_free(&r);
}

static void test_no_cpu_samples_is_an_empty_list(void **state)
{
	struct json_object *o, *list;
	struct report r;

	make_cpu_callback(&r);
	o = report_to_json(&r);
	assert_true(json_object_object_get_ex(o, "cpu_samples", &list));
	assert_true(json_object_is_type(list, json_type_array));
	assert_int_equal(json_object_array_length(list), 0);
	json_object_put(o);
	report_free(&r);
}

static void test_text_under_threshold_events(void **state)
{
	struct report r;
	size_t len;
	char *buf;

	make_callback_two_events(&r);
	buf = capture(write_text_plain, &r, &len);
	assert_null(strstr(buf, "SLOW "));		/* --all: not over the threshold */
	assert_contains(buf, "12.5ms");
	assert_contains(buf, "Severity: medium (score 11)  reason: io_blocking");
	assert_contains(buf, "\n  Blocking events: 2\n");
	assert_contains(buf, "\n  - open(/srv/data.txt, r)  [file, 9.9ms]  at handler.py:31:cb\n");
	assert_contains(buf, "\n      handler.py:31:cb\n");
	assert_contains(buf, "\n  - os.kill(4242, 15)  [other, 0.0ms]  at handler.py:32:cb\n");
	free(buf);
	report_free(&r);
}

/* Text shows every frame the stack kept (--trace-depth), not the first four. */
static void test_text_shows_every_frame(void **state)
{
	struct report r;
	size_t len;
	char *buf;

	make_sleeper(&r);
	free(r.events[0].trace);
	r.events[0].trace = xstrdup("/srv/redis/connection.py:192:_read_from_socket <- "
				    "/srv/redis/connection.py:220:read_response <- "
				    "/srv/redis/client.py:540:parse_response <- "
				    "/srv/redis/client.py:512:execute_command <- "
				    "/srv/redis/commands.py:31:blpop <- /srv/worker.py:28:work");
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "\n      connection.py:192:_read_from_socket <- "
			     "connection.py:220:read_response <- client.py:540:parse_response <- "
			     "client.py:512:execute_command <- commands.py:31:blpop <- "
			     "worker.py:28:work\n");
	free(buf);
	report_free(&r);
}

/* Two files of one block with the same base name do not look alike. */
static void test_text_paths_unambiguous(void **state)
{
	struct report r;
	size_t len;
	char *buf;

	make_sleeper(&r);
	free(r.events[0].trace);
	free(r.events[0].entry_point);
	r.events[0].entry_point = xstrdup("/srv/chat/server.py:58:handler");
	r.events[0].trace = xstrdup("/srv/chat/server.py:58:handler <- "
				    "/usr/lib/python3/dist-packages/websockets/server.py:240:handler");
	buf = capture(write_text_plain, &r, &len);
	assert_contains(buf, "[sleep, 60.1ms]  at chat/server.py:58:handler\n");
	assert_contains(buf, "\n      chat/server.py:58:handler <- "
			     "websockets/server.py:240:handler\n");
	free(buf);
	report_free(&r);
}

static void write_text_colour(FILE *out, const struct report *r)
{
	report_write_text(out, r, true);
}

/* On a terminal the header and the level are coloured by level; low keeps the default. */
static void test_text_colour(void **state)
{
	struct report r;
	size_t len;
	char *buf;

	make_sleeper(&r);
	buf = capture(write_text_colour, &r, &len);
	assert_int_equal(strncmp(buf, "\033[1;31mSLOW TASK DETECTED: 61.2ms",
				 strlen("\033[1;31mSLOW TASK DETECTED: 61.2ms")), 0);
	assert_contains(buf, "coro sleeper\033[0m\n");
	assert_contains(buf, "Severity: \033[1;31mhigh\033[0m (score 50)");
	free(buf);
	r.level = LEVEL_MEDIUM;
	buf = capture(write_text_colour, &r, &len);
	assert_int_equal(strncmp(buf, "\033[33mSLOW TASK", strlen("\033[33mSLOW TASK")), 0);
	free(buf);
	r.level = LEVEL_LOW;
	buf = capture(write_text_colour, &r, &len);
	assert_null(strchr(buf, '\033'));
	free(buf);
	buf = capture(write_text_plain, &r, &len);
	assert_null(strchr(buf, '\033'));
	free(buf);
	report_free(&r);
}

/* Colour only on a terminal, and never when NO_COLOR is set to anything but "". */
static void test_colour_wanted(void **state)
{
	int master, slave;
	FILE *tty, *file = tmpfile();

	assert_non_null(file);
	assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
	tty = fdopen(slave, "w");
	assert_non_null(tty);
	unsetenv("NO_COLOR");
	assert_true(report_colour_wanted(tty));
	assert_false(report_colour_wanted(file));
	setenv("NO_COLOR", "", 1);
	assert_true(report_colour_wanted(tty));
	setenv("NO_COLOR", "1", 1);
	assert_false(report_colour_wanted(tty));
	unsetenv("NO_COLOR");
	fclose(tty);
	fclose(file);
	close(master);
}

int main(void)
{
	const struct CMUnitTest json_tests[] = {
		cmocka_unit_test(test_json_task_with_event),
		cmocka_unit_test(test_json_plain_callback_cpu),
		cmocka_unit_test(test_json_task_without_events),
		cmocka_unit_test(test_reason_from_where_time_went),
		cmocka_unit_test(test_json_slow_iteration),
		cmocka_unit_test(test_json_callback_events_syscall_null),
		cmocka_unit_test(test_json_all_categories),
		cmocka_unit_test(test_json_levels),
	};
	const struct CMUnitTest write_json_tests[] = {
		cmocka_unit_test(test_write_json_one_line),
		cmocka_unit_test(test_write_json_two_reports_two_lines),
		cmocka_unit_test(test_write_json_escapes_hostile_strings),
		cmocka_unit_test_setup_teardown(test_write_json_invalid_utf8_task_name,
						owned_setup, owned_teardown),
	};
	const struct CMUnitTest text_tests[] = {
		cmocka_unit_test(test_text_task_shape),
		cmocka_unit_test(test_ns_ids_only_when_they_differ),
		cmocka_unit_test(test_text_escapes_target_strings),
		cmocka_unit_test(test_text_plain_callback),
		cmocka_unit_test(test_text_under_threshold_events),
		cmocka_unit_test(test_cpu_samples),
		cmocka_unit_test(test_no_cpu_samples_is_an_empty_list),
		cmocka_unit_test(test_cut_report_says_so),
		cmocka_unit_test(test_whole_report_says_nothing_cut),
		cmocka_unit_test(test_gc_ms),
		cmocka_unit_test(test_text_shows_every_frame),
		cmocka_unit_test(test_text_paths_unambiguous),
		cmocka_unit_test(test_text_colour),
		cmocka_unit_test(test_colour_wanted),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("report_to_json", json_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("report_write_json", write_json_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("report_write_text", text_tests, NULL, NULL);
	return failed ? 1 : 0;
}
