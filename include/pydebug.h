/* SPDX-License-Identifier: GPL-2.0 */
/*
 * CPython 3.13+ starts _PyRuntime with _Py_DebugOffsets, its own table of the offsets an
 * out-of-process tool needs, and 3.14+ has the _asyncio module describe its Task the same way
 * (section .AsyncioDebug). Parsing them (as hostile bytes) overrides the built-in row; each
 * version lays its table out differently, and pydebug.c knows each format it accepts.
 */
#ifndef AIOCOPD_PYDEBUG_H
#define AIOCOPD_PYDEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pylayout.h"

#define PYDEBUG_COOKIE		"xdebugpy"
#define PYDEBUG_TABLE_MAX	1024	/* above sizeof(_Py_DebugOffsets) of every known format */
#define PYDEBUG_ASYNCIO_SIZE	104	/* sizeof(_Py_AsyncioModuleDebugOffsets), 3.14 and 3.15 */
#define PYDEBUG_ASYNCIO_SECTION	".AsyncioDebug"

/*
 * Applies the table in buf (the first len bytes of _PyRuntime) to layout. Returns 0, or
 * -ENOENT (no table: not 3.13+), -ENOTSUP (a table format we do not know, or cut short),
 * -EINVAL (a table whose values cannot be right: layout is left unchanged).
 */
int pydebug_apply(const uint8_t *buf, size_t len, int major, int minor,
		  struct py_version_layout *layout);

/* Whether the table in buf says its build is free-threaded (no GIL): false if no table. */
bool pydebug_free_threaded(const uint8_t *buf, size_t len);

/*
 * Applies the _asyncio module's table (its .AsyncioDebug section, len bytes) to layout's Task
 * fields. Returns 0, -ENOTSUP (not a size we know) or -EINVAL (layout left unchanged).
 */
int pydebug_apply_asyncio(const uint8_t *buf, size_t len, struct py_version_layout *layout);

#endif
