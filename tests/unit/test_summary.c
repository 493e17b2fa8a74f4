/*
 * test_summary.c - unit tests for src/summary.c: exec's exit status precedence (SPEC section
 * 2: CMD's own when it failed, else 3 when --fail-on was met, else 0) and the ranking of the
 * worst entry points.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "summary.h"

#define VIOLATION	3

static void test_failed_command_keeps_its_status(void **state)
{
	/* a pytest suite with a failing test exits 1 even when --fail-on was met */
	assert_int_equal(summary_exit_status(1, 2, VIOLATION), 1);
	assert_int_equal(summary_exit_status(130, 1, VIOLATION), 130);
	assert_int_equal(summary_exit_status(7, 0, VIOLATION), 7);
}

static void test_violation_when_command_succeeded(void **state)
{
	assert_int_equal(summary_exit_status(0, 1, VIOLATION), VIOLATION);
	assert_int_equal(summary_exit_status(0, 0, VIOLATION), 0);
}

static void make(struct report *r, const char *coro, const char *where, double ms,
		 enum severity_level level, struct report_event *ev)
{
	memset(r, 0, sizeof(*r));
	memset(ev, 0, sizeof(*ev));
	r->is_task = true;
	r->exceeded = true;
	snprintf(r->task_name, sizeof(r->task_name), "t");
	snprintf(r->coro, sizeof(r->coro), "%s", coro);
	ev->entry_point = (char *)where;
	r->events = ev;
	r->n_events = 1;
	r->elapsed_ms = ms;
	r->level = level;
}

/* What the summary writes of s: its counts, then (with_worst) its worst entry points. */
static char *written(const struct proc_summary *s, bool with_worst)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	summary_write_counts(f, s);
	if (with_worst) {
		fputc('\n', f);
		summary_write_worst(f, s, "  ");
	}
	fclose(f);
	return text;
}

static void test_worst_ranked_and_counted(void **state)
{
	struct proc_summary s = { 0 };
	struct report_event ev;
	struct report r;
	char *text;

	assert_false(summary_any_slow(&s));
	summary_note(&s, (make(&r, "a", "/srv/a.py:1:a", 40, LEVEL_LOW, &ev), &r));
	summary_note(&s, (make(&r, "b", "/srv/b.py:2:b", 90, LEVEL_HIGH, &ev), &r));
	summary_note(&s, (make(&r, "a", "/srv/a.py:1:a", 120, LEVEL_HIGH, &ev), &r));
	assert_true(summary_any_slow(&s));
	assert_string_equal(s.worst[0].where, "/srv/a.py:1:a");
	assert_int_equal(s.worst[0].count, 2);
	assert_string_equal(s.worst[1].where, "/srv/b.py:2:b");
	text = written(&s, true);
	assert_string_equal(text, "slow: 2 high, 0 medium, 1 low\n"
			    "  2x, worst 120.0ms high: task 't' coro a at /srv/a.py:1:a\n"
			    "  1x, worst 90.0ms high: task 't' coro b at /srv/b.py:2:b\n");
	free(text);
	summary_free(&s);
}

/* The loop's lag is counted beside the callbacks, never ranked as one nor given a level. */
static void test_slow_iterations_counted_apart(void **state)
{
	struct proc_summary s = { 0 };
	struct report_event ev;
	struct report r;
	char *text;

	memset(&r, 0, sizeof(r));
	r.slow_iteration = true;
	r.exceeded = true;
	r.elapsed_ms = 80;
	snprintf(r.callback, sizeof(r.callback), "<loop iteration>");
	summary_note(&s, &r);
	r.elapsed_ms = 95;
	summary_note(&s, &r);
	assert_true(summary_any_slow(&s));
	assert_null(s.worst[0].where);
	summary_note(&s, (make(&r, "a", "/srv/a.py:1:a", 40, LEVEL_LOW, &ev), &r));
	text = written(&s, false);
	assert_string_equal(text, "slow: 0 high, 0 medium, 1 low; "
			    "2 slow loop iteration(s), worst 95.0ms");
	free(text);
	summary_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_command_keeps_its_status),
		cmocka_unit_test(test_violation_when_command_succeeded),
		cmocka_unit_test(test_worst_ranked_and_counted),
		cmocka_unit_test(test_slow_iterations_counted_apart),
	};

	return cmocka_run_group_tests_name("summary", tests, NULL, NULL);
}
