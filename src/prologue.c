// SPDX-License-Identifier: GPL-2.0
/*
 * Function prologues (see prologue.h): a decoder of the few x86-64 instructions a probe may
 * step over. Anything it does not know ends the search, so a build compiled otherwise keeps
 * its probe on the first instruction, as before.
 */
#include <stdbool.h>
#include <string.h>

#include "prologue.h"

static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };
static const uint8_t test_rdi[] = { 0x48, 0x85, 0xff };

static bool starts_with(const uint8_t *code, size_t len, size_t at, const uint8_t *what,
			size_t n)
{
	return at <= len && len - at >= n && memcmp(code + at, what, n) == 0;
}

/* Length of a `je` (rel8 or rel32) at code[at], 0 if there is none. */
static size_t je_length(const uint8_t *code, size_t len, size_t at)
{
	if (at < len && code[at] == 0x74 && len - at >= 2)
		return 2;
	if (at < len && len - at >= 6 && code[at] == 0x0f && code[at + 1] == 0x84)
		return 6;
	return 0;
}

/* push %reg: 50+r, or 41 50+r for r8 to r15. */
static bool is_push(const uint8_t *code, size_t len, size_t at)
{
	if (at < len && code[at] >= 0x50 && code[at] <= 0x57)
		return true;
	return at < len && len - at >= 2 && code[at] == 0x41 && code[at + 1] >= 0x50 &&
	       code[at + 1] <= 0x57;
}

int prologue_push_offset(const uint8_t *code, size_t len, int skip_null_check)
{
	size_t at = 0, je;

	if (!code)
		return -1;
	if (starts_with(code, len, at, endbr64, sizeof(endbr64)))
		at += sizeof(endbr64);
	if (skip_null_check && starts_with(code, len, at, test_rdi, sizeof(test_rdi)) &&
	    (je = je_length(code, len, at + sizeof(test_rdi))))
		at += sizeof(test_rdi) + je;
	return is_push(code, len, at) ? (int)at : -1;
}
