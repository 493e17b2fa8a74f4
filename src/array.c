// SPDX-License-Identifier: GPL-2.0
/* Growable arrays (see array.h): capacity doubles, so n items cost O(n) copies in all. */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

#define ARRAY_FIRST_CAP		8

void *array_room_for(void *items, size_t *cap, size_t n, size_t size)
{
	size_t want;
	void *grown;

	if (n < *cap)
		return items;
	want = *cap ? 2 * *cap : ARRAY_FIRST_CAP;
	if (want <= n || want > SIZE_MAX / size)
		return NULL;
	grown = realloc(items, want * size);
	if (grown)
		*cap = want;
	return grown;
}
