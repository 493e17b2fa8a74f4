/*
 * test_rate_limit.c - unit tests for src/rate_limit.c: at most N reports a minute per
 * service, process and entry point, the minute starting at the key's first report; the
 * rest counted and told once per ended minute (SPEC 6.3); a process's windows told when it
 * exits; a bounded table; the limit changed in place at a reload, 0 meaning no limit.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <cmocka.h>

#include "rate_limit.h"

#define S	1000000000ull
#define T0	(1000 * S)		/* a monotonic clock that has run a while */
#define WALL0	1764000000.0

/* What flush told, the last summary kept whole. */
struct told {
	unsigned n;
	uint64_t total;
	char service[64];
	char entry_point[2048];
	pid_t pid;
	uint64_t count;
	double ts, window_s;
};

static void on_summary(void *ctx, const struct suppressed *s)
{
	struct told *t = ctx;

	t->n++;
	t->total += s->count;
	snprintf(t->service, sizeof(t->service), "%s", s->service);
	snprintf(t->entry_point, sizeof(t->entry_point), "%s", s->entry_point);
	t->pid = s->pid;
	t->count = s->count;
	t->ts = s->ts;
	t->window_s = s->window_s;
}

static enum rate_verdict admit(struct rate_limit *rl, pid_t pid, const char *where,
			       uint64_t now)
{
	return rate_limit_admit(rl, "orders-api", pid, where, now,
				WALL0 + (double)(now - T0) / S);
}

static void flush(struct rate_limit *rl, uint64_t now, bool all, pid_t pid, struct told *t)
{
	memset(t, 0, sizeof(*t));
	rate_limit_flush(rl, now, all, pid, on_summary, t);
}

static void test_limit_per_key(void **state)
{
	struct rate_limit *rl = rate_limit_new(3);

	assert_non_null(rl);
	for (int i = 0; i < 3; i++)
		assert_int_equal(admit(rl, 42, "/srv/app.py:58:handle", T0 + i * S), RATE_WRITE);
	assert_int_equal(admit(rl, 42, "/srv/app.py:58:handle", T0 + 3 * S), RATE_SUPPRESS);
	assert_int_equal(admit(rl, 42, "/srv/app.py:58:handle", T0 + 4 * S), RATE_SUPPRESS);
	/* each part of the key is a key of its own */
	assert_int_equal(admit(rl, 42, "/srv/app.py:59:handle", T0 + 4 * S), RATE_WRITE);
	assert_int_equal(admit(rl, 43, "/srv/app.py:58:handle", T0 + 4 * S), RATE_WRITE);
	assert_int_equal(rate_limit_admit(rl, "billing", 42, "/srv/app.py:58:handle", T0 + 4 * S,
					  WALL0), RATE_WRITE);
	assert_int_equal(admit(rl, 42, "/srv/app.py:58:handle", T0 + 5 * S), RATE_SUPPRESS);
	rate_limit_free(rl);
}

static void test_window_starts_at_first_report(void **state)
{
	struct rate_limit *rl = rate_limit_new(1);
	uint64_t first = T0 + 10 * S;
	struct told t;

	assert_int_equal(admit(rl, 7, "a.py:1:f", first), RATE_WRITE);
	assert_int_equal(admit(rl, 7, "a.py:1:f", first + 1), RATE_SUPPRESS);
	assert_int_equal(admit(rl, 7, "a.py:1:f", first + 60 * S - 1), RATE_SUPPRESS);
	flush(rl, first + 60 * S - 1, false, 0, &t);
	assert_int_equal(t.n, 0);	/* the minute is not over */
	/* a new minute from exactly 60 s after the first report */
	assert_int_equal(admit(rl, 7, "a.py:1:f", first + 60 * S), RATE_WRITE);
	assert_int_equal(admit(rl, 7, "a.py:1:f", first + 61 * S), RATE_SUPPRESS);
	/* the minute that admit found over is told at the next flush, with its own start */
	flush(rl, first + 61 * S, false, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 2);
	assert_true(t.ts == WALL0 + 10.0);
	assert_true(t.window_s == 60.0);
	flush(rl, first + 62 * S, false, 0, &t);
	assert_int_equal(t.n, 0);	/* told once */
	/* the second minute, once over */
	flush(rl, first + 120 * S, false, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 1);
	assert_true(t.ts == WALL0 + 70.0);
	rate_limit_free(rl);
}

static void test_summary_names_its_key(void **state)
{
	struct rate_limit *rl = rate_limit_new(2);
	struct told t;

	for (int i = 0; i < 16; i++)
		admit(rl, 4242, "/srv/app.py:58:handle", T0 + i * S);
	admit(rl, 4242, "/srv/app.py:70:other", T0);	/* within its limit: nothing to tell */
	flush(rl, T0 + 59 * S, false, 0, &t);
	assert_int_equal(t.n, 0);
	flush(rl, T0 + 60 * S, false, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 14);
	assert_string_equal(t.service, "orders-api");
	assert_string_equal(t.entry_point, "/srv/app.py:58:handle");
	assert_int_equal(t.pid, 4242);
	assert_true(t.ts == WALL0);
	assert_true(t.window_s == 60.0);
	/* ended windows are forgotten: a report now starts a fresh minute */
	assert_int_equal(admit(rl, 4242, "/srv/app.py:58:handle", T0 + 61 * S), RATE_WRITE);
	assert_int_equal(admit(rl, 4242, "/srv/app.py:58:handle", T0 + 61 * S), RATE_WRITE);
	assert_int_equal(admit(rl, 4242, "/srv/app.py:58:handle", T0 + 61 * S), RATE_SUPPRESS);
	flush(rl, T0 + 200 * S, false, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 1);
	rate_limit_free(rl);
}

static void test_flush_of_an_exited_process(void **state)
{
	struct rate_limit *rl = rate_limit_new(1);
	struct told t;

	for (int i = 0; i < 5; i++) {
		admit(rl, 100, "a.py:1:f", T0 + i * S);
		admit(rl, 100, "a.py:2:g", T0 + i * S);
		admit(rl, 200, "a.py:1:f", T0 + i * S);
	}
	flush(rl, T0 + 20 * S, true, 100, &t);
	assert_int_equal(t.n, 2);		/* both of its entry points, at once */
	assert_int_equal(t.total, 8);
	assert_int_equal(t.pid, 100);
	assert_true(t.window_s == 20.0);	/* it says how long it really covered */
	/* its windows are gone, the other process's are not */
	assert_int_equal(admit(rl, 100, "a.py:1:f", T0 + 21 * S), RATE_WRITE);
	assert_int_equal(admit(rl, 200, "a.py:1:f", T0 + 21 * S), RATE_SUPPRESS);
	/* without all, only the process's ended windows */
	flush(rl, T0 + 30 * S, false, 200, &t);
	assert_int_equal(t.n, 0);
	flush(rl, T0 + 60 * S, false, 200, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 5);
	assert_int_equal(t.pid, 200);
	/* at exit, everything */
	admit(rl, 100, "a.py:1:f", T0 + 61 * S);
	flush(rl, T0 + 62 * S, true, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 1);
	flush(rl, T0 + 63 * S, true, 0, &t);
	assert_int_equal(t.n, 0);
	rate_limit_free(rl);
}

static void key_of(char *buf, size_t size, unsigned i)
{
	snprintf(buf, size, "/srv/app/module_%u.py:%u:handler_%u", i % 97, i, i / 3);
}

static void test_bounded_table(void **state)
{
	struct rate_limit *rl = rate_limit_new(1);
	char where[128];
	struct told t;

	for (unsigned i = 0; i < RATE_LIMIT_MAX_KEYS; i++) {
		key_of(where, sizeof(where), i);
		assert_int_equal(admit(rl, (pid_t)(1000 + i % 13), where, T0), RATE_WRITE);
	}
	key_of(where, sizeof(where), RATE_LIMIT_MAX_KEYS);
	assert_int_equal(admit(rl, 1, where, T0), RATE_UNTRACKED);
	assert_int_equal(admit(rl, 1, where, T0), RATE_UNTRACKED);
	/* every key in the table is still found */
	for (unsigned i = 0; i < RATE_LIMIT_MAX_KEYS; i++) {
		key_of(where, sizeof(where), i);
		assert_int_equal(admit(rl, (pid_t)(1000 + i % 13), where, T0 + S), RATE_SUPPRESS);
	}
	/* the minute over, the table has room again */
	flush(rl, T0 + 60 * S, false, 0, &t);
	assert_int_equal(t.n, RATE_LIMIT_MAX_KEYS);
	assert_int_equal(t.total, RATE_LIMIT_MAX_KEYS);
	for (unsigned i = 0; i < RATE_LIMIT_MAX_KEYS; i++) {
		key_of(where, sizeof(where), i + RATE_LIMIT_MAX_KEYS);
		assert_int_equal(admit(rl, 2, where, T0 + 61 * S), RATE_WRITE);
	}
	rate_limit_free(rl);
}

/* Half the table forgotten: the keys left are still found after the hash is built again. */
static void test_partial_flush_keeps_the_rest(void **state)
{
	struct rate_limit *rl = rate_limit_new(1);
	char where[128];
	struct told t;

	for (unsigned i = 0; i < 2000; i++) {
		key_of(where, sizeof(where), i);
		admit(rl, (pid_t)(i % 2 ? 11 : 12), where, T0);
	}
	flush(rl, T0 + S, true, 11, &t);
	assert_int_equal(t.n, 0);		/* nothing held yet */
	for (unsigned i = 0; i < 2000; i++) {
		key_of(where, sizeof(where), i);
		assert_int_equal(admit(rl, (pid_t)(i % 2 ? 11 : 12), where, T0 + 2 * S),
				 i % 2 ? RATE_WRITE : RATE_SUPPRESS);
	}
	rate_limit_free(rl);
}

static void test_set_at_reload(void **state)
{
	struct rate_limit *rl = rate_limit_new(2);
	struct told t;

	assert_int_equal(admit(rl, 5, "a.py:1:f", T0), RATE_WRITE);
	assert_int_equal(admit(rl, 5, "a.py:1:f", T0), RATE_WRITE);
	assert_int_equal(admit(rl, 5, "a.py:1:f", T0), RATE_SUPPRESS);
	rate_limit_set(rl, 4);		/* raised: the same minute allows two more */
	assert_int_equal(admit(rl, 5, "a.py:1:f", T0 + S), RATE_WRITE);
	assert_int_equal(admit(rl, 5, "a.py:1:f", T0 + S), RATE_WRITE);
	assert_int_equal(admit(rl, 5, "a.py:1:f", T0 + S), RATE_SUPPRESS);
	rate_limit_set(rl, 1);		/* lowered: over it already */
	assert_int_equal(admit(rl, 5, "a.py:1:f", T0 + 2 * S), RATE_SUPPRESS);
	assert_int_equal(admit(rl, 6, "a.py:1:f", T0 + 2 * S), RATE_WRITE);
	assert_int_equal(admit(rl, 6, "a.py:1:f", T0 + 2 * S), RATE_SUPPRESS);
	rate_limit_set(rl, 0);		/* no limit: what was held is still told */
	for (int i = 0; i < 100; i++)
		assert_int_equal(admit(rl, 5, "a.py:1:f", T0 + 3 * S), RATE_WRITE);
	flush(rl, T0 + 60 * S, false, 0, &t);
	assert_int_equal(t.n, 1);		/* pid 6's minute began 2 s later */
	assert_int_equal(t.count, 3);
	flush(rl, T0 + 62 * S, false, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.count, 1);
	rate_limit_free(rl);
}

static void test_zero_is_unlimited(void **state)
{
	struct rate_limit *rl = rate_limit_new(0);
	char where[128];
	struct told t;

	for (unsigned i = 0; i < 3 * RATE_LIMIT_MAX_KEYS; i++) {
		key_of(where, sizeof(where), i % 5000);
		assert_int_equal(admit(rl, 9, where, T0 + i), RATE_WRITE);
	}
	flush(rl, T0 + 3600 * S, true, 0, &t);
	assert_int_equal(t.n, 0);
	rate_limit_free(rl);
}

/* Keys that share their first 1024 bytes are one key; a huge entry point costs no more. */
static void test_long_keys_are_bounded(void **state)
{
	struct rate_limit *rl = rate_limit_new(1);
	size_t len = 100000;
	char *a = malloc(len + 1), *b = malloc(len + 1);
	struct told t;

	assert_non_null(a);
	assert_non_null(b);
	memset(a, 'x', len);
	a[len] = 0;
	memcpy(b, a, len + 1);
	b[len - 1] = 'y';
	assert_int_equal(admit(rl, 3, a, T0), RATE_WRITE);
	assert_int_equal(admit(rl, 3, b, T0), RATE_SUPPRESS);
	b[10] = 'y';
	assert_int_equal(admit(rl, 3, b, T0), RATE_WRITE);
	flush(rl, T0 + 60 * S, false, 0, &t);
	assert_int_equal(t.n, 1);
	assert_int_equal(strlen(t.entry_point), 1024);
	free(a);
	free(b);
	rate_limit_free(rl);
}

/* A full table under a steady stream: every admit is a hash lookup, never a scan. */
static void test_many_admits_are_cheap(void **state)
{
	struct rate_limit *rl = rate_limit_new(20);
	char where[RATE_LIMIT_MAX_KEYS][64];
	struct timespec a, b;
	double s;

	for (unsigned i = 0; i < RATE_LIMIT_MAX_KEYS; i++)
		key_of(where[i], sizeof(where[i]), i);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned n = 0; n < 2000000; n++) {
		unsigned i = (n * 2654435761u) % RATE_LIMIT_MAX_KEYS;

		admit(rl, (pid_t)(1 + i % 7), where[i], T0 + n);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	s = (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
	printf("rate_limit: 2000000 admits over %d keys in %.3f s\n", RATE_LIMIT_MAX_KEYS, s);
	/* a scan of 4096 keys per admit would take minutes; a hash, well under a second */
	assert_true(s < 20.0);
	rate_limit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_limit_per_key),
		cmocka_unit_test(test_window_starts_at_first_report),
		cmocka_unit_test(test_summary_names_its_key),
		cmocka_unit_test(test_flush_of_an_exited_process),
		cmocka_unit_test(test_bounded_table),
		cmocka_unit_test(test_partial_flush_keeps_the_rest),
		cmocka_unit_test(test_set_at_reload),
		cmocka_unit_test(test_zero_is_unlimited),
		cmocka_unit_test(test_long_keys_are_bounded),
		cmocka_unit_test(test_many_admits_are_cheap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
