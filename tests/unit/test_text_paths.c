/*
 * test_text_paths.c - unit tests for src/text_paths.c: text output names each file by its
 * shortest suffix that no other file of the same block ends with (SPEC section 2).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <cmocka.h>

#include "text_paths.h"

/* The short name of path within the set built from trace. */
static const char *short_in(const char *trace, const char *path)
{
	static struct path_set set;
	const char *found;

	memset(&set, 0, sizeof(set));
	path_set_add_trace(&set, trace);
	found = strstr(trace, path);
	assert_non_null(found);
	return found + path_set_short_start(&set, found, strlen(path));
}

static void assert_short(const char *trace, const char *path, const char *expected)
{
	const char *s = short_in(trace, path);

	if (strncmp(s, expected, strlen(expected)) || s - strstr(trace, path) +
	    strlen(expected) != strlen(path))
		fail_msg("%s in [%s]: expected %s, got %.*s", path, trace, expected,
			 (int)(strlen(path) - (size_t)(s - strstr(trace, path))), s);
}

static void test_base_name_when_alone(void **state)
{
	const char *t = "/srv/app.py:7:sleeper <- /usr/lib/python3.11/asyncio/events.py:80:_run";

	assert_short(t, "/srv/app.py", "app.py");
	assert_short(t, "/usr/lib/python3.11/asyncio/events.py", "events.py");
}

/* The application's server.py and websockets' server.py must not look alike. */
static void test_same_base_name_told_apart(void **state)
{
	const char *t = "/srv/chat/server.py:58:handler <- "
			"/usr/lib/python3/dist-packages/websockets/server.py:240:handler <- "
			"/usr/lib/python3.11/asyncio/events.py:80:_run";

	assert_short(t, "/srv/chat/server.py", "chat/server.py");
	assert_short(t, "/usr/lib/python3/dist-packages/websockets/server.py",
		     "websockets/server.py");
	assert_short(t, "/usr/lib/python3.11/asyncio/events.py", "events.py");
}

/* Parents that are alike too: as many components as it takes. */
static void test_deeper_difference(void **state)
{
	const char *t = "/a/x/pkg/util.py:1:f <- /b/y/pkg/util.py:2:g";

	assert_short(t, "/a/x/pkg/util.py", "x/pkg/util.py");
	assert_short(t, "/b/y/pkg/util.py", "y/pkg/util.py");
}

/* One path is a suffix of the other: the shorter one can only be itself, the longer one more. */
static void test_suffix_of_another(void **state)
{
	const char *t = "pkg/util.py:1:f <- /srv/pkg/util.py:2:g";

	assert_short(t, "/srv/pkg/util.py", "srv/pkg/util.py");
	assert_short(t, "pkg/util.py", "pkg/util.py");
}

/* The same file twice is one file: its base name is enough. */
static void test_same_file_twice(void **state)
{
	const char *t = "/srv/app.py:7:a <- /srv/app.py:9:b";

	assert_short(t, "/srv/app.py", "app.py");
}

/* "path:line:function": the path may hold ':', the line and function do not. */
static void test_frame_path_len(void **state)
{
	const char *f = "/srv/c:d/app.py:7:sleeper";

	assert_int_equal(frame_path_len(f, strlen(f)), strlen("/srv/c:d/app.py"));
	assert_int_equal(frame_path_len("...", 3), 3);
	assert_int_equal(frame_path_len("app.py:?:f", 10), 6);
}

/* A path the set does not know (it was full) is shown whole: never mistaken for another. */
static void test_unknown_path_is_whole(void **state)
{
	struct path_set set = { 0 };
	char paths[PATH_SET_MAX + 1][32];

	for (int i = 0; i <= PATH_SET_MAX; i++) {
		snprintf(paths[i], sizeof(paths[i]), "/d%d/f.py", i);
		path_set_add(&set, paths[i], strlen(paths[i]));
	}
	assert_true(set.full);
	assert_int_equal(path_set_short_start(&set, paths[PATH_SET_MAX],
					      strlen(paths[PATH_SET_MAX])), 0);
	assert_int_equal(path_set_short_start(&set, paths[0], strlen(paths[0])), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_name_when_alone),
		cmocka_unit_test(test_same_base_name_told_apart),
		cmocka_unit_test(test_deeper_difference),
		cmocka_unit_test(test_suffix_of_another),
		cmocka_unit_test(test_same_file_twice),
		cmocka_unit_test(test_frame_path_len),
		cmocka_unit_test(test_unknown_path_is_whole),
	};

	return cmocka_run_group_tests_name("text_paths", tests, NULL, NULL);
}
