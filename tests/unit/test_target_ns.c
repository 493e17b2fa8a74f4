// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for the NSpid line of /proc/PID/status as target_ns.c reads it: the host's id first,
 * the target's own last, one field outside any PID namespace, and anything malformed (a
 * negative, zero or huge id, a letter, an empty line, no line) read as "not known".
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "target_ns.h"

#define STATUS_HEAD	"Name:\tpython3.11\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t28738\n"

static void test_own_namespace_last_field(void **state)
{
	pid_t outer = 0, inner = 0;

	assert_int_equal(target_nspid_parse(STATUS_HEAD "NSpid:\t28738\t2\nNSpgid:\t28737\t1\n",
					    &outer, &inner), 0);
	assert_int_equal(outer, 28738);
	assert_int_equal(inner, 2);
}

static void test_nested_namespaces(void **state)
{
	pid_t outer = 0, inner = 0;

	assert_int_equal(target_nspid_parse(STATUS_HEAD "NSpid:\t900\t40\t3\n", &outer, &inner),
			 0);
	assert_int_equal(outer, 900);
	assert_int_equal(inner, 3);
}

static void test_host_process_one_field(void **state)
{
	pid_t outer = 0, inner = 0;

	assert_int_equal(target_nspid_parse("NSpid:\t4242\n", &outer, &inner), 0);
	assert_int_equal(outer, 4242);
	assert_int_equal(inner, 4242);
}

/* "NSpgid:" and "NSsid:" start like it: only the NSpid line counts. */
static void test_other_ns_lines_are_not_it(void **state)
{
	pid_t outer = 0, inner = 0;

	assert_int_equal(target_nspid_parse(STATUS_HEAD "NSpgid:\t1\t1\nNSsid:\t1\t1\n", &outer,
					    &inner), -ENOENT);
}

static void test_malformed_is_unknown(void **state)
{
	static const char *const bad[] = {
		STATUS_HEAD,				/* no NSpid line at all */
		STATUS_HEAD "NSpid:\n",			/* no id */
		STATUS_HEAD "NSpid:\t12\t-2\n",
		STATUS_HEAD "NSpid:\t12\t0\n",
		STATUS_HEAD "NSpid:\t12\t2x\n",
		STATUS_HEAD "NSpid:\t99999999999\n",
		"xNSpid:\t5\n",
	};
	pid_t outer, inner;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(target_nspid_parse(bad[i], &outer, &inner), -ENOENT);
}

/* More levels than the kernel can have: the first 32 are read, and the line stays bounded. */
static void test_levels_are_bounded(void **state)
{
	char status[1024] = "NSpid:";
	pid_t outer = 0, inner = 0;
	size_t n = 6;

	for (int i = 1; i <= 40; i++)
		n += snprintf(status + n, sizeof(status) - n, "\t%d", i);
	snprintf(status + n, sizeof(status) - n, "\n");
	assert_int_equal(target_nspid_parse(status, &outer, &inner), 0);
	assert_int_equal(outer, 1);
	assert_int_equal(inner, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_own_namespace_last_field),
		cmocka_unit_test(test_nested_namespaces),
		cmocka_unit_test(test_host_process_one_field),
		cmocka_unit_test(test_other_ns_lines_are_not_it),
		cmocka_unit_test(test_malformed_is_unknown),
		cmocka_unit_test(test_levels_are_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
