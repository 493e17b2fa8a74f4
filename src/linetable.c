/*
 * linetable.c - decoder for CPython line tables (see include/linetable.h).
 *
 * Semantics follow CPython's own PyCode_Addr2Line()/co_lines() for 3.10
 * (Objects/lnotab_notes.txt) and 3.11+ (InternalDocs/locations.md), with
 * every place where CPython trusts its input turned into a bounds check.
 * The tables come from another process's memory, so a bad table must cost
 * us a "no line" answer, never a crash or an over-read.
 */
#include <limits.h>
#include <stdbool.h>

#include "linetable.h"

/* 3.10: a line delta of -128 marks a range without a line number. */
#define LT310_NO_LINE		(-128)

/* 3.11+: entry header byte is 1kkkkLLL (k: kind, L: code units - 1). */
#define LT311_ENTRY_START	0x80
#define LT311_KIND(b)		(((b) >> 3) & 0x0f)
#define LT311_UNITS(b)		(((b) & 0x07) + 1)
#define LT311_CODE_UNIT		2	/* bytes per _Py_CODEUNIT */

enum lt311_kind {
	LT311_ONE_LINE0 = 10,
	LT311_ONE_LINE1 = 11,
	LT311_ONE_LINE2 = 12,
	LT311_NO_COLUMNS = 13,
	LT311_LONG = 14,
	LT311_NONE = 15,
};

/* 3.11+ varints: 6 value bits per byte, bit 6 says another byte follows. */
#define VARINT_MORE		0x40
#define VARINT_BITS		6
/* Five chunks hold 30 bits; CPython never emits more for a line delta. */
#define VARINT_MAX_CHUNKS	5

void linetable_iter_init(struct linetable_iter *it, enum linetable_format fmt,
			 const uint8_t *table, size_t len, int firstlineno)
{
	it->fmt = fmt;
	it->table = table;
	it->len = table ? len : 0;
	it->pos = 0;
	it->line = firstlineno;
	it->end = 0;
	it->broken = 0;
}

static int iter_fail(struct linetable_iter *it)
{
	it->broken = 1;
	it->pos = it->len;
	return -1;
}

/*
 * Apply a line delta.  Hostile tables could walk the running line out of
 * int range; that is malformed, not something to wrap around.
 */
static bool add_line(struct linetable_iter *it, int64_t delta)
{
	int64_t line = it->line + delta;

	if (line < INT_MIN || line > INT_MAX)
		return false;
	it->line = line;
	return true;
}

/* Close the range [it->end, it->end + width) carrying `line`. */
static bool emit(struct linetable_iter *it, struct linetable_range *r,
		 int64_t width, bool has_line)
{
	int64_t end = it->end + width;

	if (end > INT_MAX)
		return false;
	r->start = (int)it->end;
	r->end = (int)end;
	/* Lines below zero cannot be real; callers only see >= 0 or -1. */
	r->line = (has_line && it->line >= 0) ? (int)it->line : -1;
	it->end = end;
	return true;
}

/*
 * 3.10: pairs of (unsigned byte delta, signed line delta).  Pairs with a
 * zero byte delta exist only to carry large line jumps; CPython folds them
 * into the next non-empty range, whose line is set by the last pair read.
 * A trailing odd byte or trailing zero-width pairs describe no range.
 */
static int next_310(struct linetable_iter *it, struct linetable_range *r)
{
	bool has_line = false;

	while (it->len - it->pos >= 2) {
		uint8_t bdelta = it->table[it->pos];
		int ldelta = (int8_t)it->table[it->pos + 1];

		it->pos += 2;
		if (ldelta == LT310_NO_LINE) {
			has_line = false;
		} else {
			if (!add_line(it, ldelta))
				return iter_fail(it);
			has_line = true;
		}
		if (bdelta) {
			if (!emit(it, r, bdelta, has_line))
				return iter_fail(it);
			return 1;
		}
	}
	it->pos = it->len;
	return 0;
}

/* Index one past the 3.11+ entry starting at `pos`: the next header byte. */
static size_t entry_end_311(const struct linetable_iter *it, size_t pos)
{
	size_t i;

	for (i = pos + 1; i < it->len; i++)
		if (it->table[i] & LT311_ENTRY_START)
			break;
	return i;
}

/*
 * Signed varint in p[0..n).  Running into the entry end before the last
 * chunk, or needing more chunks than a real line delta can, is malformed.
 */
static bool read_svarint(const uint8_t *p, size_t n, int64_t *out)
{
	uint32_t val = 0;
	size_t i;

	for (i = 0; i < n && i < VARINT_MAX_CHUNKS; i++) {
		val |= (uint32_t)(p[i] & 0x3f) << (i * VARINT_BITS);
		if (!(p[i] & VARINT_MORE)) {
			/* Sign lives in bit 0, magnitude above it. */
			*out = (val & 1) ? -(int64_t)(val >> 1) : (int64_t)(val >> 1);
			return true;
		}
	}
	return false;
}

/* Line delta carried by a 3.11+ entry (only some kinds change the line). */
static bool line_delta_311(const struct linetable_iter *it, size_t pos,
			   size_t end, int64_t *delta)
{
	switch (LT311_KIND(it->table[pos])) {
	case LT311_NO_COLUMNS:
	case LT311_LONG:
		return read_svarint(it->table + pos + 1, end - pos - 1, delta);
	case LT311_ONE_LINE1:
		*delta = 1;
		return true;
	case LT311_ONE_LINE2:
		*delta = 2;
		return true;
	default:		/* short forms, ONE_LINE0, NONE */
		*delta = 0;
		return true;
	}
}

/*
 * 3.11+: one entry per range.  Column data is irrelevant for line lookup,
 * so, like CPython, entry extents come from the header bits alone and the
 * kind-specific payload is only parsed where it holds the line delta.
 */
static int next_311(struct linetable_iter *it, struct linetable_range *r)
{
	size_t pos = it->pos, end;
	uint8_t head;
	int64_t delta;

	if (pos >= it->len)
		return 0;
	head = it->table[pos];
	if (!(head & LT311_ENTRY_START))
		return iter_fail(it);
	end = entry_end_311(it, pos);
	if (!line_delta_311(it, pos, end, &delta) || !add_line(it, delta))
		return iter_fail(it);
	if (!emit(it, r, (int64_t)LT311_UNITS(head) * LT311_CODE_UNIT,
		  LT311_KIND(head) != LT311_NONE))
		return iter_fail(it);
	it->pos = end;
	return 1;
}

int linetable_iter_next(struct linetable_iter *it, struct linetable_range *r)
{
	if (it->broken)
		return -1;
	switch (it->fmt) {
	case LINETABLE_310:
		return next_310(it, r);
	case LINETABLE_311:
		return next_311(it, r);
	}
	return iter_fail(it);
}

int linetable_addr2line(enum linetable_format fmt, const uint8_t *table,
			size_t len, int firstlineno, int addr)
{
	struct linetable_iter it;
	struct linetable_range r;

	if (addr < 0)
		return -1;
	linetable_iter_init(&it, fmt, table, len, firstlineno);
	/* Ranges are contiguous from offset 0, so the first one past addr holds it. */
	while (linetable_iter_next(&it, &r) == 1)
		if (addr < r.end)
			return r.line;
	return -1;
}
