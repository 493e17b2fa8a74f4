// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for the /proc/PID/maps name forms of target.c: a newline shows as "\012" and comes
 * back from it, the four characters "\012" in a real name read back as a newline (why such
 * a name is only a candidate, checked by inode), and both directions stop at the buffer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "target.h"

static void test_newline_shows_as_octal_escape(void **state)
{
	char out[64];

	target_maps_name_escape("/tmp/evil\nlib/libpython3.11.so", out, sizeof(out));
	assert_string_equal(out, "/tmp/evil\\012lib/libpython3.11.so");
}

static void test_escape_reads_back(void **state)
{
	const char *name = "/a\nb\n\nc";
	char shown[64], back[64];

	target_maps_name_escape(name, shown, sizeof(shown));
	target_maps_name_unescape(shown, back, sizeof(back));
	assert_string_equal(back, name);
}

/* A name that holds the four characters is shown as it is, and is ambiguous. */
static void test_literal_escape_is_ambiguous(void **state)
{
	char shown[64], back[64];

	target_maps_name_escape("/tmp/evil\\012lib", shown, sizeof(shown));
	assert_string_equal(shown, "/tmp/evil\\012lib");
	target_maps_name_unescape(shown, back, sizeof(back));
	assert_string_equal(back, "/tmp/evil\nlib");
}

static void test_other_escapes_untouched(void **state)
{
	char back[64];

	target_maps_name_unescape("/x\\01/y\\040z\\", back, sizeof(back));
	assert_string_equal(back, "/x\\01/y\\040z\\");
}

static void test_bounded(void **state)
{
	char out[8];

	memset(out, 'X', sizeof(out));
	target_maps_name_escape("/abc\ndefgh", out, 8);	/* "/abc" fits, "\012" would not */
	assert_string_equal(out, "/abc");
	target_maps_name_escape("/abcdefghij", out, 8);
	assert_string_equal(out, "/abcdef");
	target_maps_name_unescape("/abcdefghij", out, 8);
	assert_string_equal(out, "/abcdef");
	target_maps_name_unescape("/abc", out, 1);
	assert_string_equal(out, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_newline_shows_as_octal_escape),
		cmocka_unit_test(test_escape_reads_back),
		cmocka_unit_test(test_literal_escape_is_ambiguous),
		cmocka_unit_test(test_other_escapes_untouched),
		cmocka_unit_test(test_bounded),
	};

	return cmocka_run_group_tests_name("target_names", tests, NULL, NULL);
}
