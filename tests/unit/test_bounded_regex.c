// SPDX-License-Identifier: GPL-2.0
/*
 * test_bounded_regex.c - unit tests for src/bounded_regex.c: the expanded size of a pattern
 * as glibc's regcomp would build it, the patterns refused before regcomp (nested intervals,
 * length, depth, back-references) and the ones that must still compile and match.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "bounded_regex.h"

/* regex_expanded_size of a pattern it must not refuse */
static long measure(const char *pattern, bool *nested)
{
	const char *why = NULL;
	long size = regex_expanded_size(pattern, nested, &why);

	assert_true(size >= 0);
	assert_null(why);
	return size;
}

static long size_of(const char *pattern)
{
	bool nested;

	return measure(pattern, &nested);
}

static bool nests(const char *pattern)
{
	bool nested;

	measure(pattern, &nested);
	return nested;
}

/* bounded_regcomp with the time a configuration's regexes get, all for this one */
static int compile(regex_t *re, const char *pattern, int flags, char why[256])
{
	unsigned budget = 4 * REGEX_TRIAL_MS;

	why[0] = 0;
	return bounded_regcomp(re, pattern, flags, &budget, why, 256);
}

static void test_sizes_of_plain_patterns(void **state)
{
	assert_int_equal(size_of(""), 0);
	assert_int_equal(size_of("gunicorn.*orders"), 15);
	assert_int_equal(size_of("(celery|uvicorn) --app"), 19);
	/* a bracket expression is one atom, whatever it holds */
	assert_int_equal(size_of("[]a-z[:digit:][.-.]]x"), 2);
	assert_int_equal(size_of("[^]]"), 1);
	assert_int_equal(size_of("a\\.b"), 3);
}

static void test_sizes_of_repetitions(void **state)
{
	assert_int_equal(size_of("a{5}"), 5);
	assert_int_equal(size_of("a{2,7}"), 7);
	assert_int_equal(size_of("a{3,}"), 4);
	assert_int_equal(size_of("a{,4}"), 4);
	assert_int_equal(size_of("a+"), 2);
	assert_int_equal(size_of("a*b?"), 2);
	/* the interval applies to the atom before it: a group as large as what it holds */
	assert_int_equal(size_of("x(ab){3}y"), 8);
	assert_int_equal(size_of("([0-9]{1,3}\\.){3}[0-9]{1,3}"), 15);
	/* nested intervals multiply */
	assert_int_equal(size_of("((a{10}){10}){10}"), 1000);
	/* not an interval: the brace is a literal atom here */
	assert_int_equal(size_of("a{x}"), 4);
}

/* Only a pattern that nests repetitions needs a trial compile in a child. */
static void test_nested_repetitions(void **state)
{
	assert_false(nests("gunicorn.*orders"));
	assert_false(nests("(celery|uvicorn) +--app"));
	assert_false(nests("a{1,1024}b*[0-9]+"));
	assert_false(nests("(a|b)c*"));
	assert_true(nests("(a|b)*"));
	assert_true(nests("([0-9]{1,3}\\.){3}"));
	assert_true(nests("a*{2}"));
	assert_true(nests("a+?"));
	assert_true(nests("(a||)+"));
}

static void test_sizes_are_capped(void **state)
{
	assert_int_equal(size_of("x{1,32767}{1,32767}"), REGEX_MAX_EXPANDED + 1);
	assert_int_equal(size_of("a{99999999999999999999}"), REGEX_MAX_EXPANDED + 1);
	assert_int_equal(size_of("((((a{10}){10}){10}){10})"), REGEX_MAX_EXPANDED + 1);
	/* an unclosed group's atoms still count */
	assert_int_equal(size_of("(((a{40}"), 40);
}

static void test_refused_before_regcomp(void **state)
{
	const char *refused[] = {
		"x{1,32767}{1,32767}",
		"((a{100}){100}){100}",
		"(a{255}){255}",
		"(a)\\1",
	};
	char why[256];
	regex_t re;

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(compile(&re, refused[i], REG_NOSUB, why), -1);
		assert_true(why[0] != 0);
	}
	assert_int_equal(compile(&re, "(a)\\1", 0, why), -1);
	assert_non_null(strstr(why, "back-reference"));
	assert_int_equal(compile(&re, "(a{255}){255}", 0, why), -1);
	assert_non_null(strstr(why, "1024 atoms"));
}

static void test_length_and_depth(void **state)
{
	char long_pattern[REGEX_MAX_LENGTH + 2], deep[2 * (REGEX_MAX_DEPTH + 1) + 2];
	char why[256];
	regex_t re;
	size_t n = 0;

	memset(long_pattern, '.', sizeof(long_pattern) - 1);
	long_pattern[sizeof(long_pattern) - 1] = 0;
	assert_int_equal(compile(&re, long_pattern, 0, why), -1);
	assert_non_null(strstr(why, "longer than"));
	long_pattern[REGEX_MAX_LENGTH] = 0;	/* at the bound of both: 1024 bytes, 1024 atoms */
	assert_int_equal(compile(&re, long_pattern, REG_NOSUB, why), 0);
	regfree(&re);

	for (int i = 0; i <= REGEX_MAX_DEPTH; i++)
		deep[n++] = '(';
	deep[n++] = 'a';
	deep[n] = 0;
	assert_int_equal(compile(&re, deep, 0, why), -1);
	assert_non_null(strstr(why, "deeply"));
	deep[REGEX_MAX_DEPTH] = 'a';	/* 32 open groups and an atom: the depth is allowed */
	deep[REGEX_MAX_DEPTH + 1] = 0;
	assert_true(size_of(deep) >= 1);
}

static void test_accepted_patterns_still_match(void **state)
{
	char why[256];
	regex_t re;

	assert_int_equal(compile(&re, "gunicorn.*orders", REG_NOSUB, why), 0);
	assert_int_equal(regexec(&re, "/usr/bin/python3 gunicorn -w 4 orders:app", 0, NULL, 0), 0);
	assert_int_equal(regexec(&re, "/usr/bin/python3 celery", 0, NULL, 0), REG_NOMATCH);
	regfree(&re);
	assert_int_equal(compile(&re, "((a{10}){10}){10}", REG_NOSUB, why), 0);
	regfree(&re);
	/* what regcomp itself refuses is still refused, with regcomp's reason */
	assert_int_equal(compile(&re, "(unclosed", 0, why), -1);
	assert_true(why[0] != 0);
	assert_int_equal(compile(&re, "a{3,1}", 0, why), -1);
}

/* Small, within the size, and exponential for regcomp: only the trial in a child sees it. */
static void test_slow_to_compile_is_refused(void **state)
{
	char pattern[128] = "(a", why[256];
	unsigned budget = 4 * REGEX_TRIAL_MS;
	regex_t re;

	memset(pattern + 2, '|', 60);
	strcpy(pattern + 62, ")++++");
	assert_true(size_of(pattern) <= REGEX_MAX_EXPANDED);
	assert_int_equal(bounded_regcomp(&re, pattern, REG_NOSUB, &budget, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "takes more than 500 ms"));
	/* what it took is gone from the budget, and a budget spent refuses without a trial */
	assert_true(budget <= 3 * REGEX_TRIAL_MS);
	budget = 0;
	assert_int_equal(bounded_regcomp(&re, "(a|b)+", REG_NOSUB, &budget, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "not tried"));
	/* a pattern that nests no repetitions needs no trial */
	assert_int_equal(bounded_regcomp(&re, "gunicorn.*", REG_NOSUB, &budget, why, sizeof(why)), 0);
	regfree(&re);
	/* a trial is cut at what is left of the budget */
	budget = 50;
	assert_int_equal(bounded_regcomp(&re, pattern, REG_NOSUB, &budget, why, sizeof(why)), -1);
	assert_int_equal(budget, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes_of_plain_patterns),
		cmocka_unit_test(test_sizes_of_repetitions),
		cmocka_unit_test(test_nested_repetitions),
		cmocka_unit_test(test_sizes_are_capped),
		cmocka_unit_test(test_refused_before_regcomp),
		cmocka_unit_test(test_length_and_depth),
		cmocka_unit_test(test_accepted_patterns_still_match),
		cmocka_unit_test(test_slow_to_compile_is_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
