// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for privileges.c: every refusal it words is one line that names the capability and
 * what it is needed for, and the kernel's two refusals (EPERM, EACCES) are told apart from
 * other failures.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "privileges.h"

static void test_each_refusal_is_one_line_naming_a_capability(void **state)
{
	char msg[512];

	for (int p = 0; p < PRIV_COUNT; p++) {
		assert_int_equal(privileges_fail(p, msg, sizeof(msg)), -EPERM);
		assert_non_null(strstr(msg, "missing privileges: CAP_"));
		assert_non_null(strstr(msg, " (needed to "));
		assert_null(strchr(msg, '\n'));
		assert_true(strlen(msg) < sizeof(msg) - 1);	/* not cut short */
	}
}

static void test_cut_short_not_overrun(void **state)
{
	char msg[16];

	memset(msg, 'X', sizeof(msg));
	privileges_fail(PRIV_PERF_UPROBES, msg, sizeof(msg));
	assert_int_equal(strlen(msg), sizeof(msg) - 1);
}

static void test_denied(void **state)
{
	assert_true(privileges_denied(EPERM));
	assert_true(privileges_denied(-EACCES));
	assert_false(privileges_denied(-ENOENT));
	assert_false(privileges_denied(0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_refusal_is_one_line_naming_a_capability),
		cmocka_unit_test(test_cut_short_not_overrun),
		cmocka_unit_test(test_denied),
	};

	return cmocka_run_group_tests_name("privileges", tests, NULL, NULL);
}
