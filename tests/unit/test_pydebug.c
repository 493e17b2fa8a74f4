// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for pydebug.c: the offsets tables real 3.13.0, 3.14.10 and 3.15.2 processes carry
 * (tests/unit/data/debug_offsets_*.txt, written by capture_debug_offsets.py) must give exactly
 * the built-in row of their version, field by field; damaged, unknown and free-threaded
 * tables must be told apart and leave the layout untouched.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pydebug.h"

#define DATA_DIR	"tests/unit/data"
#define POISON		0x5a

struct capture {
	int major, minor;
	uint8_t table[PYDEBUG_TABLE_MAX];
	size_t table_len;
	uint8_t asyncio[PYDEBUG_ASYNCIO_SIZE + 8];
	size_t asyncio_len;		/* 0: the version has no _asyncio table */
};

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	unsigned byte;

	while (n < cap && sscanf(hex + 2 * n, "%2x", &byte) == 1)
		out[n++] = byte;
	return n;
}

/* Reads one capture file: "version X.Y.Z", "debug_offsets HEX", maybe "asyncio_debug HEX". */
static void load(const char *version, struct capture *c)
{
	char path[128], key[32], *hex = malloc(8192);
	FILE *f;

	assert_non_null(hex);
	memset(c, 0, sizeof(*c));
	snprintf(path, sizeof(path), DATA_DIR "/debug_offsets_%s.txt", version);
	f = fopen(path, "r");
	if (!f)
		fail_msg("cannot open %s (run from the repository root)", path);
	while (fscanf(f, "%31s %8191s", key, hex) == 2) {
		if (!strcmp(key, "version"))
			assert_int_equal(sscanf(hex, "%d.%d", &c->major, &c->minor), 2);
		else if (!strcmp(key, "debug_offsets"))
			c->table_len = unhex(hex, c->table, sizeof(c->table));
		else if (!strcmp(key, "asyncio_debug"))
			c->asyncio_len = unhex(hex, c->asyncio, sizeof(c->asyncio));
	}
	fclose(f);
	free(hex);
	assert_int_equal(c->table_len, PYDEBUG_TABLE_MAX);
}

static struct py_version_layout poisoned(void)
{
	struct py_version_layout l;

	memset(&l, POISON, sizeof(l));
	return l;
}

/*
 * Every member the table set (no longer poisoned) equals the row's; returns how many were
 * set. struct py_layout is all __u16, struct py_user_layout all unsigned-sized.
 */
static unsigned same_where_set(const struct py_version_layout *l,
			       const struct py_version_layout *row)
{
	const uint16_t *b = (const uint16_t *)&l->bpf, *rb = (const uint16_t *)&row->bpf;
	const unsigned *u = (const unsigned *)&l->user, *ru = (const unsigned *)&row->user;
	unsigned set = 0, poison_u;

	memset(&poison_u, POISON, sizeof(poison_u));
	for (size_t i = 0; i < sizeof(l->bpf) / sizeof(*b); i++) {
		if (b[i] == (uint16_t)(POISON << 8 | POISON))
			continue;
		if (b[i] != rb[i])
			fail_msg("3.%d: py_layout member %zu: table %u, row %u", row->minor, i,
				 b[i], rb[i]);
		set++;
	}
	for (size_t i = 0; i < sizeof(l->user) / sizeof(*u); i++) {
		if (u[i] == poison_u)
			continue;
		if (u[i] != ru[i])
			fail_msg("3.%d: py_user_layout member %zu: table %u, row %u", row->minor,
				 i, u[i], ru[i]);
		set++;
	}
	return set;
}

/* version, how many members its _Py_DebugOffsets sets, and whether it has _asyncio's table */
static const struct {
	const char *version;
	unsigned members;
	int asyncio;
} real[] = {
	{ "3.13.0", 26, 0 },
	{ "3.14.10", 28, 1 },
	{ "3.15.2", 29, 1 },
};

static void test_real_tables_match_builtin_rows(void **state)
{
	struct capture c;

	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		const struct py_version_layout *row;
		struct py_version_layout l = poisoned();

		load(real[i].version, &c);
		row = pylayout_find(c.major, c.minor);
		assert_non_null(row);
		assert_false(pydebug_free_threaded(c.table, c.table_len));
		assert_int_equal(pydebug_apply(c.table, c.table_len, c.major, c.minor, &l), 0);
		assert_int_equal(same_where_set(&l, row), real[i].members);

		l = *row;
		assert_int_equal(pydebug_apply(c.table, c.table_len, c.major, c.minor, &l), 0);
		assert_memory_equal(&l, row, sizeof(l));
	}
}

static void test_real_asyncio_tables_match_builtin_rows(void **state)
{
	struct capture c;

	for (size_t i = 0; i < sizeof(real) / sizeof(real[0]); i++) {
		const struct py_version_layout *row;
		struct py_version_layout l = poisoned();

		load(real[i].version, &c);
		assert_int_equal(c.asyncio_len != 0, real[i].asyncio);
		if (!c.asyncio_len)
			continue;
		row = pylayout_find(c.major, c.minor);
		assert_int_equal(pydebug_apply_asyncio(c.asyncio, c.asyncio_len, &l), 0);
		assert_int_equal(l.bpf.task_name, row->bpf.task_name);
		assert_int_equal(l.bpf.task_coro, row->bpf.task_coro);
		assert_int_equal(l.bpf.tstate_running_task, row->bpf.tstate_running_task);
		assert_int_equal(same_where_set(&l, row), 3);
	}
}

static void put(uint8_t *buf, size_t pos, uint64_t v)
{
	memcpy(buf + pos, &v, sizeof(v));
}

static void expect_refused(uint8_t *buf, size_t len, int major, int minor, int err)
{
	struct py_version_layout l = poisoned(), before = l;

	assert_int_equal(pydebug_apply(buf, len, major, minor, &l), err);
	assert_memory_equal(&l, &before, sizeof(l));
}

static void test_hostile_tables_are_refused(void **state)
{
	struct capture c;
	uint8_t *buf = c.table;

	load("3.13.0", &c);
	memcpy(buf, "ydebugpy", 8);
	expect_refused(buf, c.table_len, 3, 13, -ENOENT);	/* no cookie: no table */

	load("3.13.0", &c);
	expect_refused(buf, 23, 3, 13, -ENOENT);		/* shorter than a header */
	expect_refused(buf, c.table_len, 3, 12, -EINVAL);	/* Py_Version disagrees */
	expect_refused(buf, 583, 3, 13, -ENOTSUP);		/* cut short of 3.13's size */

	put(buf, 200, 304);				/* native_thread_id at the very end */
	expect_refused(buf, c.table_len, 3, 13, -EINVAL);

	load("3.13.0", &c);
	put(buf, 152, 0);				/* a structure of size 0 */
	expect_refused(buf, c.table_len, 3, 13, -EINVAL);

	load("3.13.0", &c);
	put(buf, 72, UINT64_MAX - 4);			/* wraps around when a width is added */
	expect_refused(buf, c.table_len, 3, 13, -EINVAL);

	load("3.13.0", &c);
	put(buf, 48, 1ull << 40);			/* an absurd structure size */
	expect_refused(buf, c.table_len, 3, 13, -EINVAL);

	load("3.13.0", &c);
	put(buf, 344, 0);				/* co_code_adaptive inside the object's head */
	expect_refused(buf, c.table_len, 3, 13, -EINVAL);

	load("3.13.0", &c);
	put(buf, 256, 0);				/* localsplus before the frame's fields */
	expect_refused(buf, c.table_len, 3, 13, -EINVAL);

	load("3.14.10", &c);
	put(buf, 640, 65);				/* a str header bigger than a str */
	expect_refused(buf, c.table_len, 3, 14, -EINVAL);

	load("3.15.2", &c);
	put(buf, 248, 888);				/* 3.15's native_thread_id past the end */
	expect_refused(buf, c.table_len, 3, 15, -EINVAL);
	load("3.15.2", &c);
	expect_refused(buf, 887, 3, 15, -ENOTSUP);		/* cut short of 3.15's size */
}

/* A version newer than every format (and row) is not guessed at: "unsupported", not garbage. */
static void test_newer_version_is_not_a_format(void **state)
{
	struct capture c;

	load("3.15.2", &c);
	put(c.table, 8, 0x031000f0);			/* 3.16.0 final */
	expect_refused(c.table, c.table_len, 3, 16, -ENOTSUP);
	assert_null(pylayout_find(3, 16));
	assert_non_null(strstr(pylayout_supported(), "3.15"));
}

static void test_free_threaded_build_is_told(void **state)
{
	struct capture c;

	load("3.14.10", &c);
	assert_false(pydebug_free_threaded(c.table, c.table_len));
	put(c.table, 16, 1);
	assert_true(pydebug_free_threaded(c.table, c.table_len));
	assert_false(pydebug_free_threaded(c.table, 23));	/* too short to say */
	memcpy(c.table, "ydebugpy", 8);
	assert_false(pydebug_free_threaded(c.table, c.table_len));	/* not a table */
}

static void test_hostile_asyncio_tables_are_refused(void **state)
{
	struct py_version_layout l = poisoned(), before = l;
	struct capture c;

	load("3.14.10", &c);
	assert_int_equal(pydebug_apply_asyncio(c.asyncio, c.asyncio_len - 8, &l), -ENOTSUP);
	put(c.asyncio, 8, 168);				/* task_name at the end of the Task */
	assert_int_equal(pydebug_apply_asyncio(c.asyncio, c.asyncio_len, &l), -EINVAL);
	load("3.14.10", &c);
	put(c.asyncio, 0, 0);				/* a Task of size 0 */
	assert_int_equal(pydebug_apply_asyncio(c.asyncio, c.asyncio_len, &l), -EINVAL);
	assert_memory_equal(&l, &before, sizeof(l));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_tables_match_builtin_rows),
		cmocka_unit_test(test_real_asyncio_tables_match_builtin_rows),
		cmocka_unit_test(test_hostile_tables_are_refused),
		cmocka_unit_test(test_newer_version_is_not_a_format),
		cmocka_unit_test(test_free_threaded_build_is_told),
		cmocka_unit_test(test_hostile_asyncio_tables_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
