/*
 * test_pyresolve.c - unit tests for src/pyresolve.c.
 *
 * The "target" is this very process: objects laid out the way CPython 3.11 lays them out are
 * built in its memory, and pyresolver reads them through process_vm_readv like any target's.
 * What is checked is what a hostile target can make of them: an object that is not a str read
 * as a name, and a code object whose first line is corrupt; and that the lines the resolver
 * keeps answer as the line table does, whatever the order of the questions.
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

/*
 * A 3.11 code object whose location table gives each code unit (two bytes) a line of its
 * own: unit u is line first + 2u (entries "no columns", one unit each, line delta 0, then 2).
 */
#define UNITS		8

static void make_code_with_lines(struct blob *code, struct blob *table, int32_t first)
{
	const struct py_version_layout *l = layout();
	static struct blob file, function, str_type, str_type2;
	uint8_t *bytes = table->bytes + l->bpf.bytes_data;

	memset(code, 0, sizeof(*code));
	memset(table, 0, sizeof(*table));
	make_ascii(&file, &str_type, Py_TPFLAGS_UNICODE_SUBCLASS, "/srv/app.py");
	make_ascii(&function, &str_type2, Py_TPFLAGS_UNICODE_SUBCLASS, "handler");
	for (unsigned u = 0; u < UNITS; u++) {
		bytes[2 * u] = 0x80 | 13 << 3;		/* no columns, one code unit */
		bytes[2 * u + 1] = u ? 2 << 1 : 0;	/* line delta as a signed varint */
	}
	put_u64(table, l->user.bytes_size, 2 * UNITS);
	put_u64(code, l->user.code_filename, addr_of(&file));
	put_u64(code, l->user.code_name, addr_of(&function));
	put_u64(code, l->user.code_qualname, addr_of(&function));
	put_u32(code, l->user.code_firstlineno, (uint32_t)first);
	put_u64(code, l->user.code_linetable, addr_of(table));
}

static int line_of_unit(struct pyresolver *r, struct blob *code, unsigned unit)
{
	struct py_location loc;

	pyresolver_locate(r, addr_of(code), addr_of(code) + layout()->user.code_adaptive + 2 * unit,
			  &loc);
	return loc.line;
}

static void test_remembered_lines_answer_as_the_table(void **state)
{
	/* every unit of two code objects, asked forwards, backwards and strided */
	static const unsigned order[] = { 0, 1, 0, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 4, 3, 2, 1, 0,
					  0, 3, 6, 1, 4, 7, 2, 5, 0, 0, 7, 7 };
	static struct blob a, a_table, b, b_table;
	struct pyresolver *r = pyresolver_new(getpid(), layout());

	assert_non_null(r);
	make_code_with_lines(&a, &a_table, 10);
	make_code_with_lines(&b, &b_table, 100);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		assert_int_equal(line_of_unit(r, &a, order[i]), 10 + 2 * (int)order[i]);
		/* the same offsets in another code object are that code object's lines */
		assert_int_equal(line_of_unit(r, &b, order[i]), 100 + 2 * (int)order[i]);
	}
	/* past the table: no line, so the first line */
	assert_int_equal(line_of_unit(r, &a, UNITS), 10);
	pyresolver_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_read),
		cmocka_unit_test(test_not_a_str_refused),
		cmocka_unit_test(test_corrupt_first_line_unknown),
		cmocka_unit_test(test_remembered_lines_answer_as_the_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
