// SPDX-License-Identifier: GPL-2.0
/*
 * _Py_DebugOffsets of CPython 3.13: cookie, PY_VERSION_HEX, then one sub-table per structure,
 * each starting with the structure's size. Offsets below are positions inside the table
 * (3.13.0, x86-64). Every value read is checked against its structure's size before use.
 */
#include <errno.h>
#include <string.h>

#include "pydebug.h"

/* Positions of the fields we use inside the 3.13 table. */
enum {
	T_VERSION = 8,
	T_RUNTIME_SIZE = 24, T_RUNTIME_INTERP_HEAD = 40,
	T_INTERP_SIZE = 48, T_INTERP_NEXT = 64, T_INTERP_THREADS_HEAD = 72,
	T_TSTATE_SIZE = 152, T_TSTATE_NEXT = 168, T_TSTATE_CURRENT_FRAME = 184,
	T_TSTATE_NATIVE_TID = 200,
	T_FRAME_SIZE = 224, T_FRAME_PREVIOUS = 232, T_FRAME_EXECUTABLE = 240,
	T_FRAME_INSTR = 248, T_FRAME_LOCALSPLUS = 256, T_FRAME_OWNER = 264,
	T_CODE_SIZE = 272, T_CODE_FILENAME = 280, T_CODE_NAME = 288, T_CODE_QUALNAME = 296,
	T_CODE_LINETABLE = 304, T_CODE_FIRSTLINENO = 312, T_CODE_ADAPTIVE = 344,
	T_TYPE_SIZE = 368, T_TYPE_NAME = 376, T_TYPE_FLAGS = 392,
	T_STR_SIZE = 536, T_STR_STATE = 544, T_STR_LENGTH = 552, T_STR_ASCII_SIZE = 560,
};

static uint64_t field(const uint8_t *buf, size_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/* An offset of a field of width w inside a structure of the size the table states. */
static int offset_in(const uint8_t *buf, size_t size_pos, size_t pos, unsigned w, uint16_t *out)
{
	uint64_t size = field(buf, size_pos), off = field(buf, pos);

	/* _PyRuntime and PyInterpreterState are hundreds of KiB; our fields are 16-bit */
	if (size == 0 || size > (1u << 24) || off + w > size || off > 0xffff)
		return -EINVAL;
	*out = (uint16_t)off;
	return 0;
}

struct mapping {
	size_t size_pos, pos;
	unsigned width;
	int user;		/* 0: bpf layout, 1: user layout */
	size_t member;		/* offsetof in struct py_layout or struct py_user_layout */
};

#define BPF_FIELD(sz, p, w, m)	{ sz, p, w, 0, offsetof(struct py_layout, m) }

static const struct mapping bpf_fields[] = {
	BPF_FIELD(T_RUNTIME_SIZE, T_RUNTIME_INTERP_HEAD, 8, runtime_interp_head),
	BPF_FIELD(T_INTERP_SIZE, T_INTERP_NEXT, 8, interp_next),
	BPF_FIELD(T_INTERP_SIZE, T_INTERP_THREADS_HEAD, 8, interp_threads_head),
	BPF_FIELD(T_TSTATE_SIZE, T_TSTATE_NEXT, 8, tstate_next),
	BPF_FIELD(T_TSTATE_SIZE, T_TSTATE_CURRENT_FRAME, 8, tstate_current_frame),
	BPF_FIELD(T_TSTATE_SIZE, T_TSTATE_NATIVE_TID, 8, tstate_native_tid),
	BPF_FIELD(T_FRAME_SIZE, T_FRAME_PREVIOUS, 8, frame_previous),
	BPF_FIELD(T_FRAME_SIZE, T_FRAME_EXECUTABLE, 8, frame_code),
	BPF_FIELD(T_FRAME_SIZE, T_FRAME_INSTR, 8, frame_instr),
	BPF_FIELD(T_FRAME_SIZE, T_FRAME_OWNER, 1, frame_owner),
	BPF_FIELD(T_TYPE_SIZE, T_TYPE_NAME, 8, type_name),
	BPF_FIELD(T_TYPE_SIZE, T_TYPE_FLAGS, 8, type_flags),
	BPF_FIELD(T_STR_SIZE, T_STR_STATE, 4, str_state),
};

static int apply_user(const uint8_t *buf, struct py_user_layout *u)
{
	uint16_t v[6];

	if (offset_in(buf, T_CODE_SIZE, T_CODE_FILENAME, 8, &v[0]) ||
	    offset_in(buf, T_CODE_SIZE, T_CODE_NAME, 8, &v[1]) ||
	    offset_in(buf, T_CODE_SIZE, T_CODE_QUALNAME, 8, &v[2]) ||
	    offset_in(buf, T_CODE_SIZE, T_CODE_LINETABLE, 8, &v[3]) ||
	    offset_in(buf, T_CODE_SIZE, T_CODE_FIRSTLINENO, 4, &v[4]) ||
	    offset_in(buf, T_STR_SIZE, T_STR_LENGTH, 8, &v[5]))
		return -EINVAL;
	/* co_code_adaptive is the variable-length tail: it starts at, not inside, the size */
	if (field(buf, T_CODE_ADAPTIVE) == 0 || field(buf, T_CODE_ADAPTIVE) > 0x10000)
		return -EINVAL;
	u->code_filename = v[0];
	u->code_name = v[1];
	u->code_qualname = v[2];
	u->code_linetable = v[3];
	u->code_firstlineno = v[4];
	u->str_length = v[5];
	u->code_adaptive = field(buf, T_CODE_ADAPTIVE);
	return 0;
}

int pydebug_apply(const uint8_t *buf, size_t len, int major, int minor,
		  struct py_version_layout *layout)
{
	struct py_version_layout next = *layout;
	uint64_t version, ascii_size, localsplus;

	if (len < 16 || memcmp(buf, PYDEBUG_COOKIE, 8))
		return -ENOENT;
	version = field(buf, T_VERSION);
	if ((int)((version >> 24) & 0xff) != major || (int)((version >> 16) & 0xff) != minor)
		return -EINVAL;		/* the table and Py_Version disagree */
	if (major != 3 || minor != 13 || len < PYDEBUG_TABLE_313_SIZE)
		return -ENOTSUP;
	for (size_t i = 0; i < sizeof(bpf_fields) / sizeof(bpf_fields[0]); i++) {
		const struct mapping *m = &bpf_fields[i];
		uint16_t v;

		if (offset_in(buf, m->size_pos, m->pos, m->width, &v))
			return -EINVAL;
		memcpy((uint8_t *)&next.bpf + m->member, &v, sizeof(v));
	}
	localsplus = field(buf, T_FRAME_LOCALSPLUS);
	ascii_size = field(buf, T_STR_ASCII_SIZE);
	if (localsplus == 0 || localsplus > 0x1000 || ascii_size == 0 || ascii_size > 0x100)
		return -EINVAL;
	next.bpf.frame_localsplus = localsplus;
	next.bpf.str_ascii_data = ascii_size;
	next.bpf.tstate_cframe = 0;	/* 3.13+: no _PyCFrame */
	if (apply_user(buf, &next.user))
		return -EINVAL;
	*layout = next;
	return 0;
}
