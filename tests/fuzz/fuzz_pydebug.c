// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_pydebug.c - libFuzzer harness for the _Py_DebugOffsets parser (src/pydebug.c).
 *
 * Input: one byte, the minor version the target claims (Py_Version; major is 3), then the
 * first bytes of its _PyRuntime. Besides not crashing, pydebug_apply() must keep what
 * pydebug.h promises: a table it refuses leaves the layout exactly as it was, and one it
 * accepts gives offsets that fit in what the BPF side reads (16-bit fields).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "pydebug.h"
#include "pylayout.h"

#define require(cond)	do { if (!(cond)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	int minor = (int)fuzz_take(&in, 1);
	const struct py_version_layout *row = pylayout_find(3, minor);
	struct py_version_layout layout, before;
	int err;

	/* an unsupported version has no row to start from; aiocopd never gets this far */
	if (!row)
		row = pylayout_find(3, 13);
	require(row);
	layout = before = *row;
	err = pydebug_apply(in.data, in.len, 3, minor, &layout);
	require(err == 0 || err == -ENOENT || err == -ENOTSUP || err == -EINVAL);
	if (err) {
		require(!memcmp(&layout, &before, sizeof(layout)));
		return 0;
	}
	require(layout.user.code_adaptive > 0 && layout.user.code_adaptive <= 0x10000);
	require(layout.bpf.frame_localsplus > 0 && layout.bpf.str_ascii_data > 0);
	return 0;
}
