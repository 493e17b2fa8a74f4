/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Growable arrays: the registries that hold as many processes, threads or sinks as there
 * are, instead of fixed tables that run out.
 */
#ifndef AIOCOPD_ARRAY_H
#define AIOCOPD_ARRAY_H

#include <stddef.h>

/*
 * Room for item n of an array of cap items of size bytes: returns items, or a larger copy
 * (cap updated), or NULL when memory ran out (items is then left as it was).
 */
void *array_room_for(void *items, size_t *cap, size_t n, size_t size);

#endif
