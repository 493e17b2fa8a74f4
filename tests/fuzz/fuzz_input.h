/* SPDX-License-Identifier: GPL-2.0 */
/*
 * fuzz_input.h - taking fixed-size fields off the front of a fuzz input.
 *
 * The harnesses in tests/fuzz/ split libFuzzer's byte string into a small header (which
 * decoder, which version, which address) and a payload. A field the input is too short for
 * reads as zero, so every input, however short, is a valid one.
 */
#ifndef AIOCOPD_FUZZ_INPUT_H
#define AIOCOPD_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct fuzz_input {
	const uint8_t *data;
	size_t len;
};

/* The next n bytes (n <= 8) as a little-endian number; missing bytes are zero. */
static inline uint64_t fuzz_take(struct fuzz_input *in, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n && in->len; i++) {
		v |= (uint64_t)in->data[0] << (8 * i);
		in->data++;
		in->len--;
	}
	return v;
}

/* The next n bytes in place, or NULL (taking nothing) when fewer are left. */
static inline const uint8_t *fuzz_take_bytes(struct fuzz_input *in, size_t n)
{
	const uint8_t *p = in->data;

	if (n > in->len)
		return NULL;
	in->data += n;
	in->len -= n;
	return p;
}

#endif
