// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_linetable.c - libFuzzer harness for the line-table decoders (src/linetable.c).
 *
 * Input: one byte choosing the format (bit 0: 3.10 pair table or 3.11+ location table, the
 * two every supported CPython uses), four bytes of co_firstlineno, four of a probe address,
 * then the table. Besides not crashing, the decoders must keep what linetable.h promises:
 * ranges are contiguous from 0 and never empty, a line is >= 0 or -1, the iteration ends
 * within len + 1 steps and stays ended, and linetable_addr2line() agrees with the ranges.
 */
#include <stdlib.h>

#include "fuzz_input.h"
#include "linetable.h"

/* addr2line is checked at this many range starts: enough to catch a disagreement, linear. */
#define CHECKED_RANGES	32

#define require(cond)	do { if (!(cond)) abort(); } while (0)

static void check_ranges(enum linetable_format fmt, const uint8_t *table, size_t len,
			 int firstlineno)
{
	struct linetable_iter it;
	struct linetable_range r;
	size_t steps = 0;
	int prev_end = 0, rc;

	linetable_iter_init(&it, fmt, table, len, firstlineno);
	while ((rc = linetable_iter_next(&it, &r)) == 1) {
		require(++steps <= len + 1);
		require(r.start == prev_end && r.end > r.start);
		require(r.line >= -1);
		if (steps <= CHECKED_RANGES)
			require(linetable_addr2line(fmt, table, len, firstlineno, r.start) ==
				r.line);
		prev_end = r.end;
	}
	require(rc == 0 || rc == -1);
	require(linetable_iter_next(&it, &r) == rc);
	/* one past the last range is outside the table */
	if (rc == 0)
		require(linetable_addr2line(fmt, table, len, firstlineno, prev_end) == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	enum linetable_format fmt = fuzz_take(&in, 1) & 1 ? LINETABLE_311 : LINETABLE_310;
	int firstlineno = (int32_t)fuzz_take(&in, 4);
	int addr = (int32_t)fuzz_take(&in, 4);
	int line;

	check_ranges(fmt, in.data, in.len, firstlineno);
	line = linetable_addr2line(fmt, in.data, in.len, firstlineno, addr);
	require(line >= -1);
	if (addr < 0)
		require(line == -1);
	return 0;
}
