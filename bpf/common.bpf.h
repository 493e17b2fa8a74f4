/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every part of the BPF object needs: the calling thread's state, record emission
 * (one reserve and one submit for every record type, with lost records counted and the
 * wakeup chosen by type), and the pieces of a blocking record: the callback's identity,
 * the Python stack and the repeats folded into it.
 */
#ifndef AIOCOPD_COMMON_BPF_H
#define AIOCOPD_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "aiocopd.h"
#include "ids.bpf.h"
#include "maps.bpf.h"
#include "pyread.bpf.h"

#define E2BIG		7	/* a map is full (vmlinux.h has no errno values) */

static __always_inline void count_lost(__u32 why)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &why);

	/* atomic: the CPU sampler's interrupt may count one in the middle of this */
	if (n)
		__sync_fetch_and_add(n, 1);
}

/*
 * Whether a record of this type wakes user space. Most wait for its drain timer: on this
 * kind of VM a wakeup is an IPI that costs microseconds, too much for every record.
 */
static __always_inline __u64 wakeup_flag(__u32 type)
{
	switch (type) {
	case EVENT_CALLBACK:
		/*
		 * Reports are rare, and user space needs the target alive to name their
		 * frames: a process that exits right after its slow callback must not
		 * outrun the drain timer.
		 */
		return BPF_RB_FORCE_WAKEUP;
	case EVENT_EXEC:
	case EVENT_ENTRY:
	case EVENT_FORK:
	case EVENT_FINALIZE:
		return BPF_RB_FORCE_WAKEUP;	/* user space holds the process stopped */
	case EVENT_EXIT:
		return BPF_RB_FORCE_WAKEUP;	/* what the process brought can go now */
	case EVENT_EXEC_SEEN:
		/* every exec on the host: the drain timer is soon enough to attach within 1 s */
		return BPF_RB_NO_WAKEUP;
	case EVENT_THREAD_EXIT:
		return 0;
	case EVENT_LOOP_THREAD:
		return 0;	/* once per thread: wake user space only if it is idle */
	}
	return BPF_RB_NO_WAKEUP;
}

/* A record of size bytes with its header filled in, or NULL (counted as lost). */
static __always_inline void *record_reserve(__u64 size, __u32 type, __u32 pid, __u32 tid,
					    __u64 ts)
{
	struct event_header *h = bpf_ringbuf_reserve(&events, size, 0);

	if (!h) {
		count_lost(LOST_RING_BUFFER);
		return NULL;
	}
	h->type = type;
	h->pid = pid;
	h->tid = tid;
	h->pad = 0;
	h->ts_ns = ts;
	return h;
}

static __always_inline void record_submit(void *rec)
{
	const struct event_header *h = rec;

	bpf_ringbuf_submit(rec, wakeup_flag(h->type));
}

/*
 * Whether a quarter of the ring waits for user space: records that do not wake it by
 * themselves do then, so that a burst is read before the ring overflows, in batches.
 */
static __always_inline bool ring_filling(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= EVENTS_RING_BYTES / 4;
}

/*
 * A program of ours that changes a loop thread's state (its syscall, epoll, callback and
 * audit programs) runs on this CPU from program_begin to program_end. The CPU sampler runs
 * in a timer interrupt, which can come in the middle of one of them: interrupts stay on in
 * syscalls and uprobe traps, and neither a tp_btf program nor a uprobe program is held off
 * by the kernel's bpf_prog_active, as perf-event programs are from tracepoint ones. Meanwhile
 * the sampler leaves the thread's half-changed state, and the per-CPU stack scratch, alone.
 */
static __always_inline void program_begin(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&programs_running, &zero);

	if (n)
		(*n)++;
}

static __always_inline void program_end(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&programs_running, &zero);

	if (n && *n)
		(*n)--;
}

static __always_inline bool program_running(void)
{
	__u32 zero = 0, *n = bpf_map_lookup_elem(&programs_running, &zero);

	return !n || *(volatile __u32 *)n;
}

static __always_inline struct thread_state *current_thread(__u32 *tid, __u32 *pid)
{
	if (!current_ids(tid, pid))
		return NULL;
	return bpf_map_lookup_elem(&threads, tid);
}

/*
 * The running thread's time on CPU since it was last switched in. last_on_ns is 0 while it
 * is off CPU: a missed switch-in then costs the stretch since (too little on-CPU time),
 * never a sleep counted as CPU time.
 */
static __always_inline void add_oncpu(struct thread_state *st, __u64 now)
{
	if (st->last_on_ns && st->last_on_ns <= now)
		st->cb_oncpu_ns += now - st->last_on_ns;
}

/* An operation of the current callback that no record shows: the report counts it. */
static __always_inline void omit_operation(struct thread_state *st, __u64 duration)
{
	st->cb_omitted++;
	st->cb_omitted_ns += duration;
}

/* Whether the str at obj reads as text (as copy_pystr copies it), a name of under 16 bytes. */
static __always_inline bool short_str_is(const struct py_layout *l, __u64 obj, const char *text)
{
	__u64 data = pystr_bytes(l, obj);
	char now[16];

	if (!data || bpf_probe_read_user(now, sizeof(now), (const void *)data))
		return false;
	for (int i = 0; i < (int)sizeof(now); i++) {
		if (now[i] != text[i])
			return false;
		if (!text[i])
			return true;
	}
	return false;
}

/*
 * The Task this thread named last takes its next step: id still holds its names, which stay
 * right while the step wrapper's type, the Task, its name object (pointer and text), its
 * coroutine and that coroutine's qualname and code are the ones they were read from. Only
 * where the coroutine is now is read again: 10 reads instead of about 25
 * (docs/PERFORMANCE.md). The text is compared because a Task, its name and its coroutine
 * that are freed can all come back at the same addresses as the next Task's.
 */
static __always_inline bool rename_task_step(const struct target_cfg *cfg,
					     const struct thread_state *st,
					     struct callback_ident *id)
{
	const struct py_layout *l = &cfg->layout;
	const struct named_task *k = &st->named;
	__u64 callable, task;

	if (!k->task || id->kind != CB_TASK_STEP || id->name_kind != TASK_NAME_STR)
		return false;
	callable = read_ptr(st->cb_args);
	if (!callable || read_ptr(callable + PY_OBJECT_TYPE) != k->type)
		return false;
	task = read_ptr(callable + l->stepwrapper_task);
	if (task != k->task || read_ptr(task + l->task_name) != k->name ||
	    read_ptr(task + l->task_coro) != k->coro ||
	    read_ptr(k->coro + l->coro_qualname) != k->qualname ||
	    !short_str_is(l, k->name, id->task_name))
		return false;
	id->code = 0;
	id->instr = 0;
	locate_coro(l, k->coro, id);
	if (id->code != k->code)
		return false;
	id->callable = callable;
	return true;
}

/* Armed: name the running callback from Context.run's arguments, once per callback. */
static __always_inline void ensure_ident(const struct target_cfg *cfg, struct thread_state *st,
					 __u32 tid)
{
	struct callback_ident *id;

	if (!(st->flags & THREAD_IN_CALLBACK) ||
	    (st->flags & (THREAD_IDENT_DONE | THREAD_ITERATION)))
		return;
	id = bpf_map_lookup_elem(&idents, &tid);
	if (!id)
		return;
	if (!rename_task_step(cfg, st, id)) {
		__builtin_memset(&st->named, 0, sizeof(st->named));
		capture_ident(cfg, st->cb_args, id, &st->named);
		if (id->kind != CB_TASK_STEP || id->name_kind != TASK_NAME_STR)
			st->named.task = 0;
	}
	st->flags |= THREAD_IDENT_DONE;
}

/*
 * Unarmed: name the callback of a long iteration from the stack just walked, or (uvloop,
 * which leaves no Handle._run on it) from the Task the thread state says runs now.
 */
static __always_inline void ensure_iteration_ident(const struct target_cfg *cfg,
						   struct thread_state *st, __u32 tid,
						   __u64 tstate, __u32 n_frames)
{
	struct callback_ident *id;

	if (!(st->flags & THREAD_ITERATION) || (st->flags & THREAD_IDENT_DONE) || !n_frames)
		return;
	id = bpf_map_lookup_elem(&idents, &tid);
	st->named.task = 0;	/* id gets other names: none of them are a step's to reuse */
	if (id && (ident_from_stack(cfg, n_frames, id) == 0 ||
		   ident_from_running_task(&cfg->layout, tstate, id) == 0))
		st->flags |= THREAD_IDENT_DONE;
}

/* The Python stack of a record, and (unarmed) the callback it names. */
static __always_inline void fill_stack(const struct target_cfg *cfg, struct thread_state *st,
				       __u32 tid, struct event_blocking *ev)
{
	__u64 tstate = current_thread_state(cfg, st, tid);

	ev->stack_end = STACK_UNREAD;
	ev->n_frames = tstate ? walk_stack(cfg, st, tid, tstate, ev->frames, &ev->stack_end) : 0;
	ensure_iteration_ident(cfg, st, tid, tstate, ev->n_frames);
}

/* A blocking record with what every source fills; the caller adds what it knows. */
static __always_inline struct event_blocking *blocking_reserve(const struct thread_state *st,
							       __u32 pid, __u32 tid, __u64 ts,
							       __u32 source)
{
	struct event_blocking *ev;

	ev = record_reserve(sizeof(*ev), EVENT_BLOCKING, pid, tid, ts);
	if (!ev)
		return NULL;
	ev->cb_seq = st->cb_seq;
	ev->duration_ns = 0;
	ev->source = source;
	ev->nr = 0;
	ev->ret = 0;
	ev->fd_mode = 0;
	ev->fd_flags = 0;
	ev->fd = -1;
	ev->peer_family = 0;
	ev->n_str = 0;
	ev->str[0] = 0;
	ev->folded_ns = 0;
	ev->folded = 0;
	ev->stack_end = STACK_UNREAD;
	return ev;
}

/*
 * An operation record (a syscall or an audit event, not a sample) is complete: it gets its
 * stack and the fast repeats folded into the record before it, becomes the record later
 * repeats fold into, and counts against the callback's cap.
 */
static __always_inline void submit_operation(const struct target_cfg *cfg,
					     struct thread_state *st, __u32 tid,
					     struct event_blocking *ev, __u32 nr, __u64 fd)
{
	fill_stack(cfg, st, tid, ev);
	ev->folded_ns = st->folded_ns;
	ev->folded = st->folded;
	st->folded_ns = 0;
	st->folded = 0;
	st->last_nr = nr;
	st->last_fd = fd;
	st->cb_blocking++;
	record_submit(ev);
}

#endif /* AIOCOPD_COMMON_BPF_H */
