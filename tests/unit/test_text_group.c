/*
 * test_text_group.c - unit tests for src/text_group.c: after 3 full reports of one task or
 * callback at one entry point in a minute, further ones are counted and said as one line per
 * 10 s (SPEC section 2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "text_group.h"

#define S	1000000000ull

/* The lines said so far, as text_group would write them. */
struct said {
	unsigned lines;
	uint64_t last_held;
	double last_worst;
	char text[256];
};

static void on_line(void *ctx, const struct report_group *g)
{
	struct said *s = ctx;
	FILE *f = fmemopen(s->text, sizeof(s->text), "w");

	assert_non_null(f);
	group_write_line(f, g);
	fclose(f);
	s->lines++;
	s->last_held = g->held;
	s->last_worst = g->held_worst_ms;
}

/* A report of coroutine coro at entry point where, elapsed ms long. */
static struct report *make(struct report *r, uint32_t pid, const char *coro, const char *where,
			   double ms)
{
	static struct report_event ev;

	memset(r, 0, sizeof(*r));
	memset(&ev, 0, sizeof(ev));
	r->pid = pid;
	r->is_task = true;
	snprintf(r->task_name, sizeof(r->task_name), "Task-%u", (unsigned)(ms * 10));
	snprintf(r->coro, sizeof(r->coro), "%s", coro);
	ev.entry_point = (char *)where;
	ev.severity = 50;
	r->events = &ev;
	r->n_events = 1;
	r->elapsed_ms = ms;
	return r;
}

static bool admit(struct report_groups *gs, struct said *s, uint32_t pid, const char *coro,
		  const char *where, double ms, uint64_t now)
{
	struct report r;

	return groups_admit(gs, make(&r, pid, coro, where, ms), now, on_line, s);
}

static void test_three_full_then_counted(void **state)
{
	static struct report_groups gs;
	struct said s = { 0 };

	/* tasks of one coroutine (one per request) are one group whatever their names */
	for (int i = 0; i < 3; i++)
		assert_true(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40 + i, i * S));
	assert_false(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 91.25, 3 * S));
	assert_false(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 50, 4 * S));
	assert_int_equal(s.lines, 0);
	/* not yet 10 s since the first one held */
	groups_flush(&gs, 12 * S, false, on_line, &s);
	assert_int_equal(s.lines, 0);
	groups_flush(&gs, 13 * S, false, on_line, &s);
	assert_int_equal(s.lines, 1);
	assert_int_equal(s.last_held, 2);
	assert_string_equal(s.text, "\xe2\x80\xa6 2 more like this at app.py:58 (worst 91.2ms)\n");
	/* said once: nothing more until more are held */
	groups_flush(&gs, 30 * S, false, on_line, &s);
	assert_int_equal(s.lines, 1);
	groups_free(&gs);
}

static void test_other_entry_point_coro_or_pid_is_another_group(void **state)
{
	static struct report_groups gs;
	struct said s = { 0 };

	for (int i = 0; i < 3; i++)
		assert_true(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, i * S));
	assert_true(admit(&gs, &s, 1, "handle", "/srv/app.py:60:handle", 40, 3 * S));
	assert_true(admit(&gs, &s, 1, "other", "/srv/app.py:58:handle", 40, 3 * S));
	assert_true(admit(&gs, &s, 2, "handle", "/srv/app.py:58:handle", 40, 3 * S));
	assert_false(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, 3 * S));
	groups_free(&gs);
}

/* A new minute shows the next report in full again, after the line of what was held. */
static void test_new_minute_full_again(void **state)
{
	static struct report_groups gs;
	struct said s = { 0 };

	for (int i = 0; i < 4; i++)
		admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, i * S);
	assert_true(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, 61 * S));
	assert_int_equal(s.lines, 1);		/* the one held was said first */
	assert_int_equal(s.last_held, 1);
	assert_true(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, 62 * S));
	assert_true(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, 63 * S));
	assert_false(admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40, 64 * S));
	groups_free(&gs);
}

/* At the end every held report is said, due or not. */
static void test_flush_all(void **state)
{
	static struct report_groups gs;
	struct said s = { 0 };

	for (int i = 0; i < 5; i++)
		admit(&gs, &s, 1, "handle", "/srv/app.py:58:handle", 40 + i, i * S);
	groups_flush(&gs, 5 * S, true, on_line, &s);
	assert_int_equal(s.lines, 1);
	assert_int_equal(s.last_held, 2);
	assert_true(s.last_worst == 44);
	groups_free(&gs);
}

/* A target that makes a new entry point each time fills the table: nothing held is lost. */
static void test_full_table_says_what_it_drops(void **state)
{
	static struct report_groups gs;
	struct said s = { 0 };
	char where[64];

	for (int i = 0; i < 4; i++)
		admit(&gs, &s, 1, "first", "/srv/app.py:1:first", 40, 0);
	for (int i = 0; i < GROUP_MAX; i++) {
		snprintf(where, sizeof(where), "/srv/gen.py:%d:f", i + 2);
		assert_true(admit(&gs, &s, 1, "f", where, 40, (uint64_t)(i + 1)));
	}
	assert_int_equal(gs.n, GROUP_MAX);
	assert_int_equal(s.lines, 1);		/* "first" went, its held one said */
	assert_int_equal(s.last_held, 1);
	groups_free(&gs);
}

/* A plain callback is grouped by its name. */
static void test_callback_grouped_by_name(void **state)
{
	static struct report_groups gs;
	struct said s = { 0 };
	struct report r;

	for (int i = 0; i < 4; i++) {
		make(&r, 1, "", "/srv/app.py:9:tick", 40);
		r.is_task = false;
		snprintf(r.callback, sizeof(r.callback), "Ticker.tick");
		assert_int_equal(groups_admit(&gs, &r, i * S, on_line, &s), i < 3);
	}
	groups_free(&gs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_full_then_counted),
		cmocka_unit_test(test_other_entry_point_coro_or_pid_is_another_group),
		cmocka_unit_test(test_new_minute_full_again),
		cmocka_unit_test(test_flush_all),
		cmocka_unit_test(test_full_table_says_what_it_drops),
		cmocka_unit_test(test_callback_grouped_by_name),
	};

	return cmocka_run_group_tests_name("text_group", tests, NULL, NULL);
}
