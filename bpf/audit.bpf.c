// SPDX-License-Identifier: GPL-2.0
/*
 * Python-level operations inside a callback, armed: CPython raises an audit event for
 * open(), socket.connect, getaddrinfo, subprocess and the like, through PySys_Audit or its
 * internal twin _PySys_Audit, which both hand it to sys_audit_tstate. The events worth a
 * record are the ones user space's classification names, which it puts in "audit_names".
 */
#include "common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[AIOCOPD_AUDIT_KEY_LEN]);
	__type(value, __u32);
} audit_names SEC(".maps");

static __always_inline void render_audit_arg(const struct py_layout *l, char fmt, __u64 val,
					     char *buf, __u32 len)
{
	__u64 v[1] = { val };

	buf[0] = 0;
	switch (fmt) {
	case 'O': case 'N':
		render_pyobj(l, val, buf, len);
		break;
	case 's': case 'y': case 'z':
		if (val)
			bpf_probe_read_user_str(buf, len, (const void *)val);
		break;
	case 'i': case 'n': case 'l': case 'L': case 'k': case 'K':
		bpf_snprintf(buf, len, "%lld", v, sizeof(v));
		break;
	}
}

/* The first three arguments as text, as their Py_BuildValue format says. */
static __always_inline void render_audit_args(const struct py_layout *l, const char *format,
					      const __u64 *va, struct event_blocking *ev)
{
	char fmt[4] = {};

	if (format)
		bpf_probe_read_user(fmt, sizeof(fmt) - 1, format);
	for (int i = 0; i < 3; i++) {
		char f = fmt[i];

		if (!f) {
			for (int j = i; j < 3; j++)
				ev->arg_text[j][0] = 0;
			break;
		}
		render_audit_arg(l, f, va[i], ev->arg_text[i], AIOCOPD_NAME_LEN);
	}
}

/* Where an audit event's first variadic arguments are. */
struct audit_va {
	__u64 regs[3];			/* in the probed call's argument registers */
	const void *vargs;		/* else in this va_list (when not NULL) */
};

/*
 * The x86-64 va_list: the argument registers saved at reg_save_area (gp_offset says how far
 * va_arg has taken them), then the ones passed on the stack at overflow_arg_area.
 */
struct sysv_va_list {
	__u32 gp_offset;
	__u32 fp_offset;
	__u64 overflow_arg_area;
	__u64 reg_save_area;
};

#define SYSV_GP_SAVE_AREA	48	/* six argument registers of 8 bytes */

/* The first three integer-class variadic arguments, as the registers would have held them. */
static __always_inline void audit_va_values(const struct audit_va *from, __u64 *va)
{
	struct sysv_va_list v = {};
	__u32 in_regs;

	if (!from->vargs) {
		for (int i = 0; i < 3; i++)
			va[i] = from->regs[i];
		return;
	}
	bpf_probe_read_user(&v, sizeof(v), from->vargs);
	/* the target's memory: a wild gp_offset only makes the values junk, as junk registers */
	in_regs = v.gp_offset < SYSV_GP_SAVE_AREA ? (SYSV_GP_SAVE_AREA - v.gp_offset) / 8 : 0;
	for (__u32 i = 0; i < 3; i++)
		va[i] = read_ptr(i < in_regs ? v.reg_save_area + v.gp_offset + 8 * i :
					       v.overflow_arg_area + 8 * (i - in_regs));
}

static __always_inline void record_audit(const char *name, const char *format,
					 const struct audit_va *from)
{
	char key[AIOCOPD_AUDIT_KEY_LEN] = {};
	struct target_cfg *cfg;
	struct thread_state *st;
	struct event_blocking *ev;
	__u32 tid, pid;
	__u64 va[3];

	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_CALLBACK))
		return;
	if (bpf_probe_read_user_str(key, sizeof(key), name) <= 0 ||
	    !bpf_map_lookup_elem(&audit_names, key))
		return;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return;
	audit_va_values(from, va);
	ensure_ident(cfg, st, tid);
	ev = blocking_reserve(st, pid, tid, bpf_ktime_get_ns(), SOURCE_AUDIT);
	if (!ev) {
		omit_operation(st, 0);	/* the ring buffer is full; the syscall has the time */
		return;
	}
	for (int i = 0; i < 6; i++)
		ev->args[i] = i < 3 ? va[i] : 0;
	__builtin_memcpy(ev->str, key, sizeof(key));
	ev->n_str = sizeof(key);
	render_audit_args(&cfg->layout, format, va, ev);
	submit_operation(cfg, st, tid, ev, 0, 0);
}

static __always_inline int audit_common(const char *name, const char *format,
					const struct audit_va *from)
{
	program_begin();
	record_audit(name, format, from);
	program_end();
	return 0;
}

/* PySys_Audit(const char *event, const char *format, ...): names every Python-level operation. */
SEC("uprobe")
int BPF_KPROBE(audit_entry, const char *name, const char *format)
{
	struct audit_va from = { { PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx) } };

	return audit_common(name, format, &from);
}

/* _PySys_Audit(PyThreadState *, const char *event, const char *format, ...): CPython's own
 * callers use this one and bypass PySys_Audit. */
SEC("uprobe")
int BPF_KPROBE(audit_tstate_entry, void *tstate, const char *name, const char *format)
{
	/* the sixth argument register */
	struct audit_va from = { { PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx), BPF_CORE_READ(ctx, r9) } };

	return audit_common(name, format, &from);
}

/*
 * sys_audit_tstate(PyThreadState *, const char *event, const char *format, va_list), where
 * both entry points meet; user space uses it instead of them where the build names it.
 */
SEC("uprobe")
int BPF_KPROBE(audit_core_entry, void *tstate, const char *name, const char *format,
	       const void *vargs)
{
	struct audit_va from = { .vargs = vargs };

	return audit_common(name, format, &from);
}
