/*
 * test_pyresolve.c - unit tests for src/pyresolve.c.
 *
 * The "target" is this very process: objects laid out the way CPython 3.11 lays them out are
 * built in its memory, and pyresolver reads them through process_vm_readv like any target's.
 * What is checked is what a hostile target can make of them: an object that is not a str read
 * as a name, and a code object whose first line is corrupt.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "pylayout.h"
#include "pyresolve.h"

#define STATE_COMPACT_ASCII		((1u << 5) | (1u << 6) | (1u << 2))

/* Room for one object or type, aligned like the heap's. */
struct blob {
	_Alignas(16) uint8_t bytes[512];
};

static const struct py_version_layout *layout(void)
{
	const struct py_version_layout *l = pylayout_find(3, 11);

	assert_non_null(l);
	return l;
}

static void put_u64(struct blob *b, unsigned off, uint64_t v)
{
	assert_true(off + sizeof(v) <= sizeof(b->bytes));
	memcpy(b->bytes + off, &v, sizeof(v));
}

static void put_u32(struct blob *b, unsigned off, uint32_t v)
{
	assert_true(off + sizeof(v) <= sizeof(b->bytes));
	memcpy(b->bytes + off, &v, sizeof(v));
}

static uint64_t addr_of(struct blob *b)
{
	return (uint64_t)(uintptr_t)b->bytes;
}

/* A compact ASCII str holding text, of the type given. */
static void make_ascii(struct blob *obj, struct blob *type, uint64_t flags, const char *text)
{
	const struct py_version_layout *l = layout();

	memset(obj, 0, sizeof(*obj));
	memset(type, 0, sizeof(*type));
	put_u64(type, l->bpf.type_flags, flags);
	put_u64(obj, PY_OBJECT_TYPE, addr_of(type));
	put_u64(obj, l->user.str_length, strlen(text));
	put_u32(obj, l->bpf.str_state, STATE_COMPACT_ASCII);
	memcpy(obj->bytes + l->bpf.str_ascii_data, text, strlen(text) + 1);
}

static void test_str_read(void **state)
{
	static struct blob obj, type;
	char buf[64];

	make_ascii(&obj, &type, Py_TPFLAGS_UNICODE_SUBCLASS, "the-sleeper");
	assert_int_equal(pyresolver_read_str(getpid(), layout(), addr_of(&obj), buf, sizeof(buf)),
			 0);
	assert_string_equal(buf, "the-sleeper");
}

/* The same bytes under a type that is not str (a bytes object, a hostile object): no name. */
static void test_not_a_str_refused(void **state)
{
	static struct blob obj, type;
	char buf[64];

	make_ascii(&obj, &type, Py_TPFLAGS_BYTES_SUBCLASS, "\x15junk");
	assert_int_not_equal(pyresolver_read_str(getpid(), layout(), addr_of(&obj), buf,
						 sizeof(buf)), 0);
	assert_string_equal(buf, "");
}

/* A code object whose co_firstlineno was overwritten: its lines are unknown, not negative. */
static void locate_with_first_line(int32_t first, struct py_location *loc, struct pyresolver **r)
{
	const struct py_version_layout *l = layout();
	static struct blob code, file, function, str_type;
	static struct blob str_type2;

	memset(&code, 0, sizeof(code));
	make_ascii(&file, &str_type, Py_TPFLAGS_UNICODE_SUBCLASS, "/srv/app.py");
	make_ascii(&function, &str_type2, Py_TPFLAGS_UNICODE_SUBCLASS, "corrupt");
	put_u64(&code, l->user.code_filename, addr_of(&file));
	put_u64(&code, l->user.code_name, addr_of(&function));
	put_u64(&code, l->user.code_qualname, addr_of(&function));
	put_u32(&code, l->user.code_firstlineno, (uint32_t)first);
	*r = pyresolver_new(getpid(), l);
	assert_non_null(*r);
	pyresolver_locate(*r, addr_of(&code), addr_of(&code) + l->user.code_adaptive, loc);
}

static void test_corrupt_first_line_unknown(void **state)
{
	static const int32_t corrupt[] = { -1519441556, -1, 0 };
	struct pyresolver *r;
	struct py_location loc;

	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		locate_with_first_line(corrupt[i], &loc, &r);
		assert_string_equal(loc.file, "/srv/app.py");
		assert_string_equal(loc.function, "corrupt");
		assert_int_equal(loc.line, -1);
		pyresolver_free(r);
	}
	/* a sound first line, no line table: the first line it is */
	locate_with_first_line(12, &loc, &r);
	assert_int_equal(loc.line, 12);
	pyresolver_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_read),
		cmocka_unit_test(test_not_a_str_refused),
		cmocka_unit_test(test_corrupt_first_line_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
