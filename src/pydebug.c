// SPDX-License-Identifier: GPL-2.0
/*
 * _Py_DebugOffsets of CPython 3.13, 3.14 and 3.15: cookie, PY_VERSION_HEX, free_threaded, then
 * one sub-table per structure, each starting with the structure's size. The sub-tables grow
 * from version to version, so where a field sits in the table is per format: one column of
 * positions per version below (x86-64, read from the releases' headers and checked against
 * real processes by tests/unit/test_pydebug.c). Every value read is checked against its
 * structure's size before use. 3.14+ also has the _asyncio module's own table for its Task.
 */
#include <errno.h>
#include <string.h>

#include "pydebug.h"

#define T_VERSION	8
#define T_FREE_THREADED	16

/* The fields we use, named after their sub-table. */
enum debug_field {
	F_RUNTIME_SIZE, F_RUNTIME_INTERP_HEAD,
	F_INTERP_SIZE, F_INTERP_NEXT, F_INTERP_THREADS_HEAD,
	F_TSTATE_SIZE, F_TSTATE_NEXT, F_TSTATE_CURRENT_FRAME, F_TSTATE_NATIVE_TID,
	F_FRAME_SIZE, F_FRAME_PREVIOUS, F_FRAME_EXECUTABLE, F_FRAME_INSTR, F_FRAME_LOCALSPLUS,
	F_FRAME_OWNER,
	F_CODE_SIZE, F_CODE_FILENAME, F_CODE_NAME, F_CODE_QUALNAME, F_CODE_LINETABLE,
	F_CODE_FIRSTLINENO, F_CODE_ADAPTIVE,
	F_TYPE_SIZE, F_TYPE_NAME, F_TYPE_FLAGS,
	F_LONG_SIZE, F_LONG_DIGIT,
	F_BYTES_SIZE, F_BYTES_OB_SIZE, F_BYTES_SVAL,
	F_STR_SIZE, F_STR_STATE, F_STR_LENGTH, F_STR_ASCII_SIZE, F_STR_COMPACT_SIZE,
	F_GEN_SIZE, F_GEN_IFRAME,
	F_COUNT
};

/* One version's table: its size and where each field is in it (0: the format has none). */
struct table_format {
	int minor;
	size_t size;
	uint16_t pos[F_COUNT];
};

static const struct table_format formats[] = {
	{ 13, 584, {
		[F_RUNTIME_SIZE] = 24, [F_RUNTIME_INTERP_HEAD] = 40,
		[F_INTERP_SIZE] = 48, [F_INTERP_NEXT] = 64, [F_INTERP_THREADS_HEAD] = 72,
		[F_TSTATE_SIZE] = 152, [F_TSTATE_NEXT] = 168, [F_TSTATE_CURRENT_FRAME] = 184,
		[F_TSTATE_NATIVE_TID] = 200,
		[F_FRAME_SIZE] = 224, [F_FRAME_PREVIOUS] = 232, [F_FRAME_EXECUTABLE] = 240,
		[F_FRAME_INSTR] = 248, [F_FRAME_LOCALSPLUS] = 256, [F_FRAME_OWNER] = 264,
		[F_CODE_SIZE] = 272, [F_CODE_FILENAME] = 280, [F_CODE_NAME] = 288,
		[F_CODE_QUALNAME] = 296, [F_CODE_LINETABLE] = 304, [F_CODE_FIRSTLINENO] = 312,
		[F_CODE_ADAPTIVE] = 344,
		[F_TYPE_SIZE] = 368, [F_TYPE_NAME] = 376, [F_TYPE_FLAGS] = 392,
		[F_LONG_SIZE] = 488, [F_LONG_DIGIT] = 504,
		[F_BYTES_SIZE] = 512, [F_BYTES_OB_SIZE] = 520, [F_BYTES_SVAL] = 528,
		[F_STR_SIZE] = 536, [F_STR_STATE] = 544, [F_STR_LENGTH] = 552,
		[F_STR_ASCII_SIZE] = 560,
	} },
	/* 3.14: the interpreter state's sub-table grew; sets, generators and more are new */
	{ 14, 760, {
		[F_RUNTIME_SIZE] = 24, [F_RUNTIME_INTERP_HEAD] = 40,
		[F_INTERP_SIZE] = 48, [F_INTERP_NEXT] = 64, [F_INTERP_THREADS_HEAD] = 72,
		[F_TSTATE_SIZE] = 176, [F_TSTATE_NEXT] = 192, [F_TSTATE_CURRENT_FRAME] = 208,
		[F_TSTATE_NATIVE_TID] = 224,
		[F_FRAME_SIZE] = 248, [F_FRAME_PREVIOUS] = 256, [F_FRAME_EXECUTABLE] = 264,
		[F_FRAME_INSTR] = 272, [F_FRAME_LOCALSPLUS] = 280, [F_FRAME_OWNER] = 288,
		[F_CODE_SIZE] = 312, [F_CODE_FILENAME] = 320, [F_CODE_NAME] = 328,
		[F_CODE_QUALNAME] = 336, [F_CODE_LINETABLE] = 344, [F_CODE_FIRSTLINENO] = 352,
		[F_CODE_ADAPTIVE] = 384,
		[F_TYPE_SIZE] = 416, [F_TYPE_NAME] = 424, [F_TYPE_FLAGS] = 440,
		[F_LONG_SIZE] = 568, [F_LONG_DIGIT] = 584,
		[F_BYTES_SIZE] = 592, [F_BYTES_OB_SIZE] = 600, [F_BYTES_SVAL] = 608,
		[F_STR_SIZE] = 616, [F_STR_STATE] = 624, [F_STR_LENGTH] = 632,
		[F_STR_ASCII_SIZE] = 640,
		[F_GEN_SIZE] = 664, [F_GEN_IFRAME] = 680,
	} },
	/* 3.15: the thread state's, the type's and the str's sub-tables grew */
	{ 15, 888, {
		[F_RUNTIME_SIZE] = 24, [F_RUNTIME_INTERP_HEAD] = 40,
		[F_INTERP_SIZE] = 48, [F_INTERP_NEXT] = 64, [F_INTERP_THREADS_HEAD] = 72,
		[F_TSTATE_SIZE] = 176, [F_TSTATE_NEXT] = 192, [F_TSTATE_CURRENT_FRAME] = 208,
		[F_TSTATE_NATIVE_TID] = 248,
		[F_FRAME_SIZE] = 312, [F_FRAME_PREVIOUS] = 320, [F_FRAME_EXECUTABLE] = 328,
		[F_FRAME_INSTR] = 336, [F_FRAME_LOCALSPLUS] = 344, [F_FRAME_OWNER] = 352,
		[F_CODE_SIZE] = 376, [F_CODE_FILENAME] = 384, [F_CODE_NAME] = 392,
		[F_CODE_QUALNAME] = 400, [F_CODE_LINETABLE] = 408, [F_CODE_FIRSTLINENO] = 416,
		[F_CODE_ADAPTIVE] = 448,
		[F_TYPE_SIZE] = 480, [F_TYPE_NAME] = 488, [F_TYPE_FLAGS] = 504,
		[F_LONG_SIZE] = 664, [F_LONG_DIGIT] = 680,
		[F_BYTES_SIZE] = 688, [F_BYTES_OB_SIZE] = 696, [F_BYTES_SVAL] = 704,
		[F_STR_SIZE] = 712, [F_STR_STATE] = 720, [F_STR_LENGTH] = 728,
		[F_STR_ASCII_SIZE] = 736, [F_STR_COMPACT_SIZE] = 744,
		[F_GEN_SIZE] = 792, [F_GEN_IFRAME] = 808,
	} },
};

static uint64_t field(const uint8_t *buf, size_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));
	return v;
}

/* A structure size the table states: _PyRuntime and PyInterpreterState are hundreds of KiB. */
static int size_at(const uint8_t *buf, size_t pos, uint64_t *size)
{
	*size = field(buf, pos);
	return *size == 0 || *size > (1u << 24) ? -EINVAL : 0;
}

/* An offset of a field of width w inside a structure of the size the table states. */
static int offset_in(const uint8_t *buf, size_t size_pos, size_t pos, unsigned w, uint16_t *out)
{
	uint64_t size, off = field(buf, pos);

	/* our fields are 16-bit */
	if (size_at(buf, size_pos, &size) || off + w > size || off > 0xffff)
		return -EINVAL;
	*out = (uint16_t)off;
	return 0;
}

/*
 * How one field becomes one member: an offset of a width inside the structure whose size
 * field says how big it is, or (width 0) a size no bigger than that structure's.
 */
struct mapping {
	enum debug_field size, value;
	unsigned width;
	int user;		/* 0: bpf layout (16-bit members), 1: user layout (unsigned) */
	size_t member;		/* offsetof in struct py_layout or struct py_user_layout */
};

#define BPF_FIELD(sz, f, w, m)	{ sz, f, w, 0, offsetof(struct py_layout, m) }
#define USER_FIELD(sz, f, w, m)	{ sz, f, w, 1, offsetof(struct py_user_layout, m) }

static const struct mapping mappings[] = {
	BPF_FIELD(F_RUNTIME_SIZE, F_RUNTIME_INTERP_HEAD, 8, runtime_interp_head),
	BPF_FIELD(F_INTERP_SIZE, F_INTERP_NEXT, 8, interp_next),
	BPF_FIELD(F_INTERP_SIZE, F_INTERP_THREADS_HEAD, 8, interp_threads_head),
	BPF_FIELD(F_TSTATE_SIZE, F_TSTATE_NEXT, 8, tstate_next),
	BPF_FIELD(F_TSTATE_SIZE, F_TSTATE_CURRENT_FRAME, 8, tstate_current_frame),
	BPF_FIELD(F_TSTATE_SIZE, F_TSTATE_NATIVE_TID, 8, tstate_native_tid),
	BPF_FIELD(F_FRAME_SIZE, F_FRAME_PREVIOUS, 8, frame_previous),
	BPF_FIELD(F_FRAME_SIZE, F_FRAME_EXECUTABLE, 8, frame_code),
	BPF_FIELD(F_FRAME_SIZE, F_FRAME_INSTR, 8, frame_instr),
	BPF_FIELD(F_FRAME_SIZE, F_FRAME_OWNER, 1, frame_owner),
	BPF_FIELD(F_FRAME_SIZE, F_FRAME_LOCALSPLUS, 8, frame_localsplus),
	BPF_FIELD(F_TYPE_SIZE, F_TYPE_NAME, 8, type_name),
	BPF_FIELD(F_TYPE_SIZE, F_TYPE_FLAGS, 8, type_flags),
	BPF_FIELD(F_STR_SIZE, F_STR_STATE, 4, str_state),
	BPF_FIELD(F_STR_SIZE, F_STR_ASCII_SIZE, 0, str_ascii_data),
	BPF_FIELD(F_STR_SIZE, F_STR_COMPACT_SIZE, 0, str_compact_data),
	BPF_FIELD(F_LONG_SIZE, F_LONG_DIGIT, 4, long_digit),
	BPF_FIELD(F_BYTES_SIZE, F_BYTES_SVAL, 1, bytes_data),
	USER_FIELD(F_CODE_SIZE, F_CODE_FILENAME, 8, code_filename),
	USER_FIELD(F_CODE_SIZE, F_CODE_NAME, 8, code_name),
	USER_FIELD(F_CODE_SIZE, F_CODE_QUALNAME, 8, code_qualname),
	USER_FIELD(F_CODE_SIZE, F_CODE_LINETABLE, 8, code_linetable),
	USER_FIELD(F_CODE_SIZE, F_CODE_FIRSTLINENO, 4, code_firstlineno),
	/* co_code_adaptive is the variable-length tail: its first code unit is inside */
	USER_FIELD(F_CODE_SIZE, F_CODE_ADAPTIVE, 2, code_adaptive),
	USER_FIELD(F_STR_SIZE, F_STR_LENGTH, 8, str_length),
	USER_FIELD(F_BYTES_SIZE, F_BYTES_OB_SIZE, 8, bytes_size),
	USER_FIELD(F_GEN_SIZE, F_GEN_IFRAME, 1, coro_iframe),
	BPF_FIELD(F_GEN_SIZE, F_GEN_IFRAME, 1, coro_frame),
};

static const struct table_format *format_of(int major, int minor)
{
	for (size_t i = 0; major == 3 && i < sizeof(formats) / sizeof(formats[0]); i++)
		if (formats[i].minor == minor)
			return &formats[i];
	return NULL;
}

/*
 * The lowest offset a field can have: PyObject_HEAD (refcount, type) opens every object,
 * and a frame's localsplus is the tail after its fixed fields.
 */
#define OBJECT_HEAD_SIZE	16

static uint64_t lowest_offset(const struct mapping *m)
{
	if (m->size == F_CODE_SIZE || m->size == F_TYPE_SIZE || m->size == F_STR_SIZE ||
	    m->size == F_LONG_SIZE || m->size == F_BYTES_SIZE || m->size == F_GEN_SIZE)
		return OBJECT_HEAD_SIZE;
	return m->value == F_FRAME_LOCALSPLUS ? 8 : 0;
}

/* One mapping's value out of the table, checked; -ENOENT when this format lacks the field. */
static int mapped_value(const uint8_t *buf, const struct table_format *fmt,
			const struct mapping *m, uint16_t *v)
{
	uint64_t size, value;
	size_t size_pos = fmt->pos[m->size], pos = fmt->pos[m->value];

	if (!pos)
		return -ENOENT;
	if (m->width) {
		if (field(buf, pos) < lowest_offset(m))
			return -EINVAL;
		return offset_in(buf, size_pos, pos, m->width, v);
	}
	value = field(buf, pos);
	if (size_at(buf, size_pos, &size) || value == 0 || value > size)
		return -EINVAL;
	*v = (uint16_t)value;
	return 0;
}

static void set_member(struct py_version_layout *l, const struct mapping *m, uint16_t v)
{
	unsigned wide = v;

	if (m->user)
		memcpy((uint8_t *)&l->user + m->member, &wide, sizeof(wide));
	else
		memcpy((uint8_t *)&l->bpf + m->member, &v, sizeof(v));
}

int pydebug_apply(const uint8_t *buf, size_t len, int major, int minor,
		  struct py_version_layout *layout)
{
	struct py_version_layout next = *layout;
	const struct table_format *fmt;
	uint64_t version;

	if (len < 24 || memcmp(buf, PYDEBUG_COOKIE, 8))
		return -ENOENT;
	version = field(buf, T_VERSION);
	if ((int)((version >> 24) & 0xff) != major || (int)((version >> 16) & 0xff) != minor)
		return -EINVAL;		/* the table and Py_Version disagree */
	fmt = format_of(major, minor);
	if (!fmt || len < fmt->size)
		return -ENOTSUP;
	for (size_t i = 0; i < sizeof(mappings) / sizeof(mappings[0]); i++) {
		uint16_t v;
		int ret = mapped_value(buf, fmt, &mappings[i], &v);

		if (ret == -ENOENT)
			continue;	/* not in this format: the row's value stands */
		if (ret)
			return ret;
		set_member(&next, &mappings[i], v);
	}
	next.bpf.tstate_cframe = 0;	/* 3.13+: no _PyCFrame */
	*layout = next;
	return 0;
}

bool pydebug_free_threaded(const uint8_t *buf, size_t len)
{
	return len >= T_FREE_THREADED + 8 && !memcmp(buf, PYDEBUG_COOKIE, 8) &&
	       field(buf, T_FREE_THREADED) != 0;
}

/*
 * Positions in the _asyncio table (3.14, 3.15): its Task sub-table comes first, then the
 * interpreter's and the thread's state (_PyThreadStateImpl: the Task running now).
 */
enum {
	A_TASK_SIZE = 0, A_TASK_NAME = 8, A_TASK_CORO = 40,
	A_THREAD_SIZE = 72, A_THREAD_RUNNING_TASK = 88,
};

int pydebug_apply_asyncio(const uint8_t *buf, size_t len, struct py_version_layout *layout)
{
	uint16_t name, coro, running;

	if (len != PYDEBUG_ASYNCIO_SIZE)
		return -ENOTSUP;
	if (offset_in(buf, A_TASK_SIZE, A_TASK_NAME, 8, &name) ||
	    offset_in(buf, A_TASK_SIZE, A_TASK_CORO, 8, &coro) ||
	    offset_in(buf, A_THREAD_SIZE, A_THREAD_RUNNING_TASK, 8, &running))
		return -EINVAL;
	layout->bpf.task_name = name;
	layout->bpf.task_coro = coro;
	layout->bpf.tstate_running_task = running;
	return 0;
}
