// SPDX-License-Identifier: GPL-2.0
/*
 * The table of CPython layouts. Offsets were read from the CPython headers of each version
 * and checked with pahole against debug builds (x86-64); the 3.13+ rows also against the
 * interpreters' own offsets tables (tests/unit/test_pydebug.c). Adding a version is adding
 * a row.
 */
#include <stddef.h>
#include <stdio.h>

#include "pylayout.h"

static const struct py_version_layout layouts[] = {
	{
		/* 3.10 chains PyFrameObjects; its thread state records pthread_self() */
		.major = 3, .minor = 10,
		.bpf = {
			.runtime_interp_head = 32,
			.interp_next = 0,
			.interp_threads_head = 8,
			.tstate_next = 8,
			.tstate_native_tid = 176,
			.tid_is_pthread = 1,
			.tstate_cframe = 0,
			.tstate_current_frame = 24,
			.frame_code = 32,
			.frame_previous = 24,
			.frame_instr = 96,
			.frame_owner = 0,
			.frame_owner_shim = 0xffff,	/* no shim frames: an owner byte never matches */
			.frame_localsplus = 352,
			.type_name = 24,
			.type_flags = 168,
			.str_state = 32,
			.str_ascii_data = 48,
			.str_compact_data = 72,
			.bytes_data = 32,
			.long_digit = 24,
			.stepwrapper_task = 16,
			.cfunc_self = 24,
			.method_func = 16,
			.func_qualname = 40,
			.task_coro = 160,
			.task_name = 168,
			.coro_qualname = 48,
			.handle_callback = 24,
		},
		.user = {
			.code_filename = 104,
			.code_name = 112,
			.code_qualname = 0,
			.code_firstlineno = 40,
			.code_linetable = 120,
			.code_adaptive = 0,
			.str_length = 16,
			.str_utf8_length = 48,
			.str_utf8 = 56,
			.bytes_size = 16,
			.type_methods = 232,
			.coro_frame_ptr = 16,
			.instr_is_lasti = 1,
			.frame_owner_generator = 0xffff,
			.linetable = LINETABLE_310,
		},
	},
	{
		.major = 3, .minor = 11,
		.bpf = {
			.runtime_interp_head = 40,
			.interp_next = 0,
			.interp_threads_head = 16,
			.tstate_next = 8,
			.tstate_native_tid = 160,
			.tstate_cframe = 56,
			.cframe_current_frame = 8,
			.frame_code = 32,
			.frame_previous = 48,
			.frame_instr = 56,
			.frame_owner = 69,
			.frame_owner_shim = 0xff,	/* 3.11 has no shim frames (owners 0-2) */
			.frame_localsplus = 72,
			.type_name = 24,
			.type_flags = 168,
			.str_state = 32,
			.str_ascii_data = 48,
			.str_compact_data = 72,
			.bytes_data = 32,
			.long_digit = 24,
			.stepwrapper_task = 16,
			.cfunc_self = 24,
			.method_func = 16,
			.func_qualname = 40,
			.task_coro = 136,
			.task_name = 144,
			.coro_qualname = 40,
			.handle_callback = 24,
		},
		.user = {
			.code_filename = 112,
			.code_name = 120,
			.code_qualname = 128,
			.code_firstlineno = 72,
			.code_linetable = 136,
			.code_adaptive = 184,
			.str_length = 16,
			.str_utf8_length = 48,
			.str_utf8 = 56,
			.bytes_size = 16,
			.type_methods = 232,
			.coro_iframe = 80,
			.frame_owner_generator = 1,
			.linetable = LINETABLE_311,
		},
	},
	{
		.major = 3, .minor = 12,
		.bpf = {
			.runtime_interp_head = 40,
			.interp_next = 0,
			.interp_threads_head = 72,
			.tstate_next = 8,
			.tstate_native_tid = 144,
			.tstate_cframe = 56,
			.cframe_current_frame = 0,
			.frame_code = 0,
			.frame_previous = 8,
			.frame_instr = 56,
			.frame_owner = 70,
			.frame_owner_shim = 3,		/* FRAME_OWNED_BY_CSTACK */
			.frame_localsplus = 72,
			.type_name = 24,
			.type_flags = 168,
			.str_state = 32,
			.str_ascii_data = 40,
			.str_compact_data = 56,
			.bytes_data = 32,
			.long_digit = 24,
			.stepwrapper_task = 16,
			.cfunc_self = 24,
			.method_func = 16,
			.func_qualname = 40,
			.task_coro = 136,
			.task_name = 144,
			.coro_qualname = 32,
			.handle_callback = 24,
		},
		.user = {
			.code_filename = 112,
			.code_name = 120,
			.code_qualname = 128,
			.code_firstlineno = 68,
			.code_linetable = 136,
			.code_adaptive = 192,
			.str_length = 16,
			.str_utf8_length = 40,
			.str_utf8 = 48,
			.bytes_size = 16,
			.type_methods = 232,
			.coro_iframe = 72,
			.frame_owner_generator = 1,
			.linetable = LINETABLE_311,
		},
	},
	{
		/* 3.13 also describes itself in _Py_DebugOffsets (pydebug.c), as do 3.14+ */
		.major = 3, .minor = 13,
		.bpf = {
			.runtime_interp_head = 632,
			.interp_next = 7264,
			.interp_threads_head = 7344,
			.tstate_next = 8,
			.tstate_native_tid = 160,
			.tstate_cframe = 0,
			.tstate_current_frame = 72,
			.frame_code = 0,
			.frame_previous = 8,
			.frame_instr = 56,
			.frame_owner = 70,
			.frame_owner_shim = 3,		/* FRAME_OWNED_BY_CSTACK */
			.frame_localsplus = 72,
			.type_name = 24,
			.type_flags = 168,
			.str_state = 32,
			.str_ascii_data = 40,
			.str_compact_data = 56,
			.bytes_data = 32,
			.long_digit = 24,
			.stepwrapper_task = 16,
			.cfunc_self = 24,
			.method_func = 16,
			.func_qualname = 40,
			.task_coro = 120,
			.task_name = 128,
			.coro_qualname = 32,
			.handle_callback = 24,
		},
		.user = {
			.code_filename = 112,
			.code_name = 120,
			.code_qualname = 128,
			.code_firstlineno = 68,
			.code_linetable = 136,
			.code_adaptive = 200,
			.str_length = 16,
			.str_utf8_length = 40,
			.str_utf8 = 48,
			.bytes_size = 16,
			.type_methods = 232,
			.coro_iframe = 72,
			.frame_owner_generator = 1,
			.linetable = LINETABLE_311,
		},
	},
	{
		/*
		 * 3.14: frames hold tagged _PyStackRef; entry frames are owned by the interpreter;
		 * the _asyncio extension describes its Task in .AsyncioDebug
		 */
		.major = 3, .minor = 14,
		.bpf = {
			.runtime_interp_head = 808,
			.interp_next = 7272,
			.interp_threads_head = 7344,
			.tstate_next = 8,
			.tstate_native_tid = 160,
			.tstate_cframe = 0,
			.tstate_current_frame = 72,
			.frame_code = 0,		/* a _PyStackRef: PY_STACKREF_TAGS */
			.frame_previous = 8,
			.frame_instr = 56,
			.frame_owner = 74,
			.frame_owner_shim = 3,		/* FRAME_OWNED_BY_INTERPRETER and up */
			.frame_localsplus = 80,
			.type_name = 24,
			.type_flags = 168,
			.str_state = 32,
			.str_ascii_data = 40,
			.str_compact_data = 56,
			.bytes_data = 32,
			.long_digit = 24,
			.stepwrapper_task = 16,
			.cfunc_self = 24,
			.method_func = 16,
			.func_qualname = 40,
			.task_coro = 128,
			.task_name = 136,
			.coro_qualname = 32,
			.handle_callback = 24,
		},
		.user = {
			.code_filename = 112,
			.code_name = 120,
			.code_qualname = 128,
			.code_firstlineno = 68,
			.code_linetable = 136,
			.code_adaptive = 208,
			.str_length = 16,
			.str_utf8_length = 40,
			.str_utf8 = 48,
			.bytes_size = 16,
			.type_methods = 232,
			.coro_iframe = 72,
			.frame_owner_generator = 1,
			.linetable = LINETABLE_311,
		},
	},
	{
		/* 3.15: the thread state grew (native_thread_id moved); _asyncio is built in */
		.major = 3, .minor = 15,
		.bpf = {
			.runtime_interp_head = 936,
			.interp_next = 7264,
			.interp_threads_head = 7336,
			.tstate_next = 8,
			.tstate_native_tid = 184,
			.tstate_cframe = 0,
			.tstate_current_frame = 72,
			.frame_code = 0,		/* a _PyStackRef: PY_STACKREF_TAGS */
			.frame_previous = 8,
			.frame_instr = 56,
			.frame_owner = 74,
			.frame_owner_shim = 3,		/* FRAME_OWNED_BY_INTERPRETER and up */
			.frame_localsplus = 80,
			.type_name = 24,
			.type_flags = 168,
			.str_state = 32,
			.str_ascii_data = 40,
			.str_compact_data = 56,
			.bytes_data = 32,
			.long_digit = 24,
			.stepwrapper_task = 16,
			.cfunc_self = 24,
			.method_func = 16,
			.func_qualname = 40,
			.task_coro = 128,
			.task_name = 136,
			.coro_qualname = 32,
			.handle_callback = 24,
		},
		.user = {
			.code_filename = 112,
			.code_name = 120,
			.code_qualname = 128,
			.code_firstlineno = 68,
			.code_linetable = 136,
			.code_adaptive = 208,
			.str_length = 16,
			.str_utf8_length = 40,
			.str_utf8 = 48,
			.bytes_size = 16,
			.type_methods = 232,
			.coro_iframe = 72,
			.frame_owner_generator = 1,
			.linetable = LINETABLE_311,
		},
	},
};

const struct py_version_layout *pylayout_find(int major, int minor)
{
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].major == major && layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}

/* The versions of the table, as "3.10, 3.11, ...": every row is a supported version. */
const char *pylayout_supported(void)
{
	static char list[16 * sizeof(layouts) / sizeof(layouts[0]) + 1];
	size_t used = 0;

	if (list[0])
		return list;
	for (size_t i = 0; i < sizeof(layouts) / sizeof(layouts[0]) && used < sizeof(list); i++)
		used += snprintf(list + used, sizeof(list) - used, "%s%d.%d", i ? ", " : "",
				 layouts[i].major, layouts[i].minor);
	return list;
}
