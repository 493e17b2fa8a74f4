// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for pydebug.c: CPython 3.13's _Py_DebugOffsets table, as read from a real 3.13.0
 * process, must give exactly the built-in 3.13 row; damaged tables must be refused and
 * leave the layout untouched.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pydebug.h"

/* (position in the table, value) pairs dumped from pyenv 3.13.0's _PyRuntime */
static const uint64_t real_313[][2] = {
	{ 24, 283320 }, { 32, 608 }, { 40, 632 },
	{ 48, 194968 }, { 56, 7272 }, { 64, 7264 }, { 72, 7344 },
	{ 152, 304 }, { 160, 0 }, { 168, 8 }, { 176, 16 }, { 184, 72 }, { 192, 152 },
	{ 200, 160 },
	{ 224, 80 }, { 232, 8 }, { 240, 0 }, { 248, 56 }, { 256, 72 }, { 264, 70 },
	{ 272, 208 }, { 280, 112 }, { 288, 120 }, { 296, 128 }, { 304, 136 }, { 312, 68 },
	{ 320, 52 }, { 344, 200 },
	{ 352, 16 }, { 360, 8 },
	{ 368, 416 }, { 376, 24 }, { 384, 88 }, { 392, 168 },
	{ 536, 64 }, { 544, 32 }, { 552, 16 }, { 560, 40 },
};

static void put(uint8_t *buf, size_t pos, uint64_t v)
{
	memcpy(buf + pos, &v, sizeof(v));
}

static void real_table(uint8_t *buf)
{
	memset(buf, 0, PYDEBUG_TABLE_313_SIZE);
	memcpy(buf, PYDEBUG_COOKIE, 8);
	put(buf, 8, 0x030d00f0);	/* 3.13.0 final */
	for (size_t i = 0; i < sizeof(real_313) / sizeof(real_313[0]); i++)
		put(buf, real_313[i][0], real_313[i][1]);
}

/* A layout that differs from any real one, to see what the table changed. */
static struct py_version_layout poisoned(void)
{
	struct py_version_layout l;

	memset(&l, 0x5a, sizeof(l));
	return l;
}

static void test_real_table_matches_builtin_row(void **state)
{
	const struct py_version_layout *row = pylayout_find(3, 13);
	struct py_version_layout l;
	uint8_t buf[PYDEBUG_TABLE_313_SIZE];

	assert_non_null(row);
	real_table(buf);
	l = *row;
	assert_int_equal(pydebug_apply(buf, sizeof(buf), 3, 13, &l), 0);
	assert_memory_equal(&l.bpf, &row->bpf, sizeof(l.bpf));
	assert_memory_equal(&l.user, &row->user, sizeof(l.user));
}

static void test_table_sets_each_field(void **state)
{
	struct py_version_layout l = poisoned();
	uint8_t buf[PYDEBUG_TABLE_313_SIZE];

	real_table(buf);
	assert_int_equal(pydebug_apply(buf, sizeof(buf), 3, 13, &l), 0);
	assert_int_equal(l.bpf.runtime_interp_head, 632);
	assert_int_equal(l.bpf.interp_next, 7264);
	assert_int_equal(l.bpf.interp_threads_head, 7344);
	assert_int_equal(l.bpf.tstate_current_frame, 72);
	assert_int_equal(l.bpf.tstate_cframe, 0);
	assert_int_equal(l.bpf.tstate_native_tid, 160);
	assert_int_equal(l.bpf.frame_code, 0);
	assert_int_equal(l.bpf.frame_previous, 8);
	assert_int_equal(l.bpf.frame_instr, 56);
	assert_int_equal(l.bpf.frame_owner, 70);
	assert_int_equal(l.bpf.frame_localsplus, 72);
	assert_int_equal(l.bpf.type_flags, 168);
	assert_int_equal(l.bpf.str_ascii_data, 40);
	assert_int_equal(l.user.code_firstlineno, 68);
	assert_int_equal(l.user.code_adaptive, 200);
}

static void expect_refused(uint8_t *buf, size_t len, int major, int minor, int err)
{
	struct py_version_layout l = poisoned(), before = l;

	assert_int_equal(pydebug_apply(buf, len, major, minor, &l), err);
	assert_memory_equal(&l, &before, sizeof(l));
}

static void test_hostile_tables_are_refused(void **state)
{
	uint8_t buf[PYDEBUG_TABLE_313_SIZE];

	real_table(buf);
	memcpy(buf, "ydebugpy", 8);
	expect_refused(buf, sizeof(buf), 3, 13, -ENOENT);	/* no cookie: no table */

	real_table(buf);
	expect_refused(buf, 15, 3, 13, -ENOENT);		/* shorter than a header */
	expect_refused(buf, sizeof(buf), 3, 12, -EINVAL);	/* Py_Version disagrees */
	expect_refused(buf, sizeof(buf) - 1, 3, 13, -ENOTSUP);	/* cut short */

	put(buf, 8, 0x030e00f0);
	expect_refused(buf, sizeof(buf), 3, 14, -ENOTSUP);	/* a format we do not know */

	real_table(buf);
	put(buf, 200, 304);				/* native_thread_id at the very end */
	expect_refused(buf, sizeof(buf), 3, 13, -EINVAL);

	real_table(buf);
	put(buf, 152, 0);				/* a structure of size 0 */
	expect_refused(buf, sizeof(buf), 3, 13, -EINVAL);

	real_table(buf);
	put(buf, 72, UINT64_MAX - 4);			/* wraps around when a width is added */
	expect_refused(buf, sizeof(buf), 3, 13, -EINVAL);

	real_table(buf);
	put(buf, 48, 1ull << 40);			/* an absurd structure size */
	expect_refused(buf, sizeof(buf), 3, 13, -EINVAL);

	real_table(buf);
	put(buf, 256, 0);				/* no localsplus */
	expect_refused(buf, sizeof(buf), 3, 13, -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_table_matches_builtin_row),
		cmocka_unit_test(test_table_sets_each_field),
		cmocka_unit_test(test_hostile_tables_are_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
