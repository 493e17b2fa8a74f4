/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Naming Python frames: a code object address and an instruction pointer become
 * path, line and function, reading the target's memory once per code object.
 */
#ifndef AIOCOPD_PYRESOLVE_H
#define AIOCOPD_PYRESOLVE_H

#include <stdint.h>
#include <sys/types.h>

#include "pylayout.h"

struct pyresolver;

struct py_location {
	const char *file;		/* co_filename, "?" when unreadable */
	const char *function;		/* co_name */
	const char *qualname;		/* co_qualname */
	int line;			/* line being executed, -1 if unknown (never 0 or below else) */
};

struct pyresolver *pyresolver_new(pid_t pid, const struct py_version_layout *layout);
void pyresolver_free(struct pyresolver *r);
/* Strings stay valid until the next call that may evict the cache entry (the next lookup). */
void pyresolver_locate(struct pyresolver *r, uint64_t code, uint64_t instr,
		       struct py_location *loc);
/*
 * Reads a str object of the target as UTF-8 into buf (always terminated); an object whose
 * type is not str is refused (-ENOTSUP) and leaves buf empty.
 */
int pyresolver_read_str(pid_t pid, const struct py_version_layout *layout, uint64_t obj,
			char *buf, size_t bufsz);

/* One-byte CPython strings are Latin-1: convert them for output (always terminates out). */
void latin1_to_utf8(const uint8_t *in, size_t n, char *out, size_t outsz);

#endif
