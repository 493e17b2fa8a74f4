/*
 * linetable.h - bytecode offset -> source line for CPython code objects.
 *
 * Owns the decoding of co_linetable as copied out of a traced (untrusted)
 * process: the 3.10 (byte delta, line delta) pair table and the 3.11+
 * location table.  Every input byte is treated as hostile: decoding never
 * reads outside [table, table + len), always terminates in O(len) steps and
 * reports malformed tables as "no line" instead of guessing.
 */
#ifndef AIOCOPD_LINETABLE_H
#define AIOCOPD_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

enum linetable_format {
	LINETABLE_310,		/* CPython 3.10 co_linetable */
	LINETABLE_311,		/* CPython 3.11 and later location table */
};

/* One address range, as co_lines() reports it (before any merging). */
struct linetable_range {
	int start;		/* first byte offset covered */
	int end;		/* one past the last byte offset covered */
	int line;		/* source line, or -1 for "no line" */
};

/* Decoder state; treat as opaque, set up with linetable_iter_init(). */
struct linetable_iter {
	enum linetable_format fmt;
	const uint8_t *table;
	size_t len;
	size_t pos;		/* next unread byte */
	int64_t line;		/* running line number */
	int64_t end;		/* end offset of the last range returned */
	int broken;		/* malformed input seen; iteration is over */
};

void linetable_iter_init(struct linetable_iter *it, enum linetable_format fmt,
			 const uint8_t *table, size_t len, int firstlineno);

/*
 * Fetch the next range into *r.  Returns 1 when *r was filled, 0 at the end
 * of the table and -1 when the table turned out to be malformed; after 0 or
 * -1 every further call returns the same value.  Each call consumes at least
 * one table byte, so a loop over it runs at most len + 1 times.
 */
int linetable_iter_next(struct linetable_iter *it, struct linetable_range *r);

/*
 * Line executing at bytecode byte offset `addr` (3.10: byte offset into
 * co_code; 3.11+: code-unit index * 2).  Returns the line (>= 0), or -1 when
 * the location is "no line", addr is outside the table (including addr < 0)
 * or the table is malformed before reaching addr.
 */
int linetable_addr2line(enum linetable_format fmt, const uint8_t *table,
			size_t len, int firstlineno, int addr);

#endif /* AIOCOPD_LINETABLE_H */
