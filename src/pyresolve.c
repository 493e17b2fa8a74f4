// SPDX-License-Identifier: GPL-2.0
/*
 * Code-object cache and frame naming. Each code object is read once (file, name, first line,
 * line table) and kept in a fixed-size open-addressing table. A line is decoded from the
 * start of the cached line table, so recent (code, instruction) -> line answers are kept
 * too, in a small direct-mapped table: the frames of a loop's reports come back to the same
 * few instructions, and decoding was half of aiocopd's time under --all.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "procmem.h"
#include "pyresolve.h"

#define CACHE_SLOTS		4096	/* power of two */
#define MAX_STR			1024
#define MAX_LINETABLE		(64u << 10)
#define LINE_SLOTS		512	/* power of two */

struct line_answer {
	uint64_t code;			/* 0: empty slot */
	int offset;			/* bytes from the code's first instruction */
	int line;
};

struct code_info {
	uint64_t addr;			/* 0: empty slot */
	char *file;
	char *function;
	char *qualname;
	int firstlineno;
	uint8_t *linetable;
	size_t linetable_len;
};

struct pyresolver {
	pid_t pid;
	const struct py_version_layout *layout;
	struct code_info slots[CACHE_SLOTS];
	size_t used;
	struct line_answer lines[LINE_SLOTS];
};

struct pyresolver *pyresolver_new(pid_t pid, const struct py_version_layout *layout)
{
	struct pyresolver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->pid = pid;
	r->layout = layout;
	return r;
}

static void clear_slot(struct code_info *ci)
{
	free(ci->file);
	free(ci->function);
	free(ci->qualname);
	free(ci->linetable);
	memset(ci, 0, sizeof(*ci));
}

static void clear_all(struct pyresolver *r)
{
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		if (r->slots[i].addr)
			clear_slot(&r->slots[i]);
	r->used = 0;
	memset(r->lines, 0, sizeof(r->lines));	/* their code objects are read afresh */
}

void pyresolver_free(struct pyresolver *r)
{
	if (!r)
		return;
	clear_all(r);
	free(r);
}

/* Latin-1 to UTF-8, for compact strings that are not ASCII and carry no UTF-8 copy. */
void latin1_to_utf8(const uint8_t *in, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 2 < outsz; i++) {
		if (in[i] < 0x80) {
			out[o++] = in[i];
		} else {
			out[o++] = 0xc0 | (in[i] >> 6);
			out[o++] = 0x80 | (in[i] & 0x3f);
		}
	}
	out[o] = 0;
}

/* Whether obj's type says it is a str: anything else read as one would be garbage. */
static int check_str_type(pid_t pid, const struct py_version_layout *layout, uint64_t obj)
{
	uint64_t type, flags;
	int err;

	if ((err = procmem_read_u64(pid, obj + PY_OBJECT_TYPE, &type)) ||
	    (err = procmem_read_u64(pid, type + layout->bpf.type_flags, &flags)))
		return err;
	return flags & Py_TPFLAGS_UNICODE_SUBCLASS ? 0 : -ENOTSUP;
}

int pyresolver_read_str(pid_t pid, const struct py_version_layout *layout, uint64_t obj,
			char *buf, size_t bufsz)
{
	const struct py_user_layout *u = &layout->user;
	uint64_t length, utf8_len, utf8;
	uint8_t raw[MAX_STR];
	uint32_t state;
	int err;

	buf[0] = 0;
	if (!obj || bufsz < 2)
		return -EINVAL;
	if ((err = check_str_type(pid, layout, obj)) ||
	    (err = procmem_read_u64(pid, obj + u->str_length, &length)) ||
	    (err = procmem_read(pid, obj + layout->bpf.str_state, &state, sizeof(state))))
		return err;
	if (!(state & (1u << 5)))
		return -ENOTSUP;		/* not compact: not something code objects use */
	if (state & (1u << 6)) {		/* ascii */
		if (length >= bufsz)
			length = bufsz - 1;
		if (length && (err = procmem_read(pid, obj + layout->bpf.str_ascii_data, buf,
						  length)))
			return err;
		buf[length] = 0;
		return 0;
	}
	if (!procmem_read_u64(pid, obj + u->str_utf8, &utf8) && utf8 &&
	    !procmem_read_u64(pid, obj + u->str_utf8_length, &utf8_len)) {
		if (utf8_len >= bufsz)
			utf8_len = bufsz - 1;
		if (utf8_len && (err = procmem_read(pid, utf8, buf, utf8_len)))
			return err;
		buf[utf8_len] = 0;
		return 0;
	}
	if (((state >> 2) & 7) != 1)
		return -ENOTSUP;		/* UCS-2/UCS-4 without a UTF-8 copy */
	if (length > sizeof(raw))
		length = sizeof(raw);
	if (length && (err = procmem_read(pid, obj + layout->bpf.str_compact_data, raw, length)))
		return err;
	latin1_to_utf8(raw, length, buf, bufsz);
	return 0;
}

static char *read_str_field(struct pyresolver *r, uint64_t code, unsigned off)
{
	char buf[MAX_STR];
	uint64_t obj;

	if (procmem_read_u64(r->pid, code + off, &obj) ||
	    pyresolver_read_str(r->pid, r->layout, obj, buf, sizeof(buf)))
		return NULL;
	return strdup(buf);
}

static void read_linetable(struct pyresolver *r, uint64_t code, struct code_info *ci)
{
	const struct py_user_layout *u = &r->layout->user;
	uint64_t obj, size;

	if (procmem_read_u64(r->pid, code + u->code_linetable, &obj) || !obj ||
	    procmem_read_u64(r->pid, obj + u->bytes_size, &size) || size == 0 ||
	    size > MAX_LINETABLE)
		return;
	ci->linetable = malloc(size);
	if (!ci->linetable)
		return;
	if (procmem_read(r->pid, obj + r->layout->bpf.bytes_data, ci->linetable, size)) {
		free(ci->linetable);
		ci->linetable = NULL;
		return;
	}
	ci->linetable_len = size;
}

static void load_code(struct pyresolver *r, uint64_t code, struct code_info *ci)
{
	int32_t first = -1;

	ci->addr = code;
	ci->file = read_str_field(r, code, r->layout->user.code_filename);
	ci->function = read_str_field(r, code, r->layout->user.code_name);
	if (r->layout->user.code_qualname)
		ci->qualname = read_str_field(r, code, r->layout->user.code_qualname);
	/* a code object's lines start at 1: a lower first line is corrupt, and so would be
	 * every line counted from it */
	if (procmem_read(r->pid, code + r->layout->user.code_firstlineno, &first, sizeof(first)) ||
	    first <= 0) {
		ci->firstlineno = -1;
		return;
	}
	ci->firstlineno = first;
	read_linetable(r, code, ci);
}

static struct code_info *lookup(struct pyresolver *r, uint64_t code)
{
	size_t h = (code >> 4) * 0x9E3779B97F4A7C15ull >> 52;

	for (size_t probe = 0; probe < CACHE_SLOTS; probe++) {
		struct code_info *ci = &r->slots[(h + probe) & (CACHE_SLOTS - 1)];

		if (ci->addr == code)
			return ci;
		if (!ci->addr) {
			if (r->used >= CACHE_SLOTS * 3 / 4) {
				/* full enough: start over rather than probe forever */
				clear_all(r);
				return lookup(r, code);
			}
			r->used++;
			load_code(r, code, ci);
			return ci;
		}
	}
	return NULL;
}

/* The line of the instruction offset bytes into ci's code (offset >= 0). */
static int line_at(struct pyresolver *r, const struct code_info *ci, int offset)
{
	size_t h = ((ci->addr >> 4) + (uint64_t)offset) * 0x9E3779B97F4A7C15ull >> 55;
	struct line_answer *a = &r->lines[h & (LINE_SLOTS - 1)];

	if (a->code == ci->addr && a->offset == offset)
		return a->line;
	a->code = ci->addr;
	a->offset = offset;
	a->line = linetable_addr2line(r->layout->user.linetable, ci->linetable,
				      ci->linetable_len, ci->firstlineno, offset);
	return a->line;
}

void pyresolver_locate(struct pyresolver *r, uint64_t code, uint64_t instr,
		       struct py_location *loc)
{
	struct code_info *ci = code ? lookup(r, code) : NULL;
	uint64_t first_instr;

	loc->file = "?";
	loc->function = "?";
	loc->qualname = "?";
	loc->line = -1;
	if (!ci)
		return;
	if (ci->file)
		loc->file = ci->file;
	if (ci->function)
		loc->function = ci->function;
	loc->qualname = ci->qualname ? ci->qualname : loc->function;
	if (r->layout->user.instr_is_lasti) {
		/* 3.10: f_lasti counts code units; -1 before the first instruction */
		int32_t lasti = (int32_t)(uint32_t)instr;

		if (ci->linetable && lasti >= 0 && lasti < (1 << 29))
			loc->line = line_at(r, ci, lasti * 2);
	} else {
		first_instr = code + r->layout->user.code_adaptive;
		if (ci->linetable && instr >= first_instr && instr - first_instr < (1u << 30))
			loc->line = line_at(r, ci, (int)(instr - first_instr));
	}
	/* line 0 and below are not lines: the frame's line is unknown then (-1) */
	if (loc->line <= 0)
		loc->line = ci->firstlineno;
}
