/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-version CPython memory layouts: what the BPF side reads (struct py_layout) and what user
 * space reads to name frames (code objects, strings). One table row per supported version.
 */
#ifndef AIOCOPD_PYLAYOUT_H
#define AIOCOPD_PYLAYOUT_H

#include <linux/types.h>
#include "aiocopd.h"
#include "linetable.h"

struct py_user_layout {
	unsigned code_filename;		/* PyCodeObject.co_filename */
	unsigned code_name;		/* PyCodeObject.co_name */
	unsigned code_qualname;		/* PyCodeObject.co_qualname; 0: none (3.10) */
	unsigned code_firstlineno;	/* PyCodeObject.co_firstlineno */
	unsigned code_linetable;	/* PyCodeObject.co_linetable */
	unsigned code_adaptive;		/* PyCodeObject.co_code_adaptive: first instruction */
	unsigned str_length;		/* PyASCIIObject.length */
	unsigned str_utf8_length;	/* PyCompactUnicodeObject.utf8_length */
	unsigned str_utf8;		/* PyCompactUnicodeObject.utf8 */
	unsigned bytes_size;		/* PyVarObject.ob_size of a bytes object */
	unsigned type_methods;		/* PyTypeObject.tp_methods */
	unsigned coro_iframe;		/* PyCoroObject.cr_iframe: the coroutine's own frame */
	unsigned coro_frame_ptr;	/* 3.10: PyCoroObject.cr_frame points at it instead */
	int instr_is_lasti;		/* 3.10: the frame holds f_lasti (an index), not a pointer */
	unsigned frame_owner_generator;	/* owner value of generator/coroutine frames */
	enum linetable_format linetable;
};

struct py_version_layout {
	int major, minor;
	struct py_layout bpf;
	struct py_user_layout user;
};

/* The layout for major.minor, or NULL when that version is not supported. */
const struct py_version_layout *pylayout_find(int major, int minor);
/* Comma-separated list of supported versions, for error messages. */
const char *pylayout_supported(void);

#endif
