/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CPython 3.13+ starts _PyRuntime with _Py_DebugOffsets, its own table of the offsets an
 * out-of-process tool needs. Parsing it (as hostile bytes) overrides the hand-written row.
 */
#ifndef AIOCOPD_PYDEBUG_H
#define AIOCOPD_PYDEBUG_H

#include <stddef.h>
#include <stdint.h>

#include "pylayout.h"

#define PYDEBUG_COOKIE		"xdebugpy"
#define PYDEBUG_TABLE_313_SIZE	584	/* sizeof(_Py_DebugOffsets) in 3.13 */

/*
 * Applies the table in buf (the first len bytes of _PyRuntime) to layout. Returns 0, or
 * -ENOENT (no table: not 3.13+), -ENOTSUP (a table format we do not know), -EINVAL (a
 * table whose values cannot be right: layout is left unchanged).
 */
int pydebug_apply(const uint8_t *buf, size_t len, int major, int minor,
		  struct py_version_layout *layout);

#endif
