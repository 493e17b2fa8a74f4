/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The scope a loop thread's records belong to: a callback (armed, bounded by Context.run)
 * or a whole loop iteration (unarmed, bounded by epoll). Both the callback boundaries
 * (bpf/callback.bpf.c) and the loop's epoll calls (bpf/loop.bpf.c) open and close scopes,
 * and closing a slow one is what emits a report.
 */
#ifndef AIOCOPD_SCOPE_BPF_H
#define AIOCOPD_SCOPE_BPF_H

#include "common.bpf.h"

/* Whether a scope that ends is worth a report: slow, or (--all) a callback that blocked. */
static __always_inline bool scope_reported(const struct target_cfg *cfg,
					   const struct thread_state *st, __u32 scope,
					   __u64 elapsed)
{
	if (elapsed >= cfg->threshold_ns)
		return true;
	return scope == SCOPE_CALLBACK && (cfg->flags & TARGET_REPORT_ALL) && st->cb_blocking;
}

/* Zeroed: a loop thread's entry in map "tops" starts as a copy of it. */
static struct iteration_tops empty_tops;

/*
 * A named callback ended under the threshold: it is kept while it is among the longest of
 * its iteration, in case the iteration turns out slow with no callback slow by itself.
 * Callers compare with iter_top_min_ns first, so most callbacks never come here; out of
 * line, so that the path every callback takes stays short.
 */
static __noinline int keep_top(struct thread_state *st, __u32 tid, __u64 elapsed)
{
	struct callback_ident *id = bpf_map_lookup_elem(&idents, &tid);
	struct iteration_tops *t;
	__u32 slot = st->iter_tops;
	__u64 min;

	if (!id || !id->callable)
		return 0;
	t = map_entry(&tops, &tid, &empty_tops);
	if (!t)
		return 0;
	if (slot >= AIOCOPD_ITER_TOPS) {
		/* all taken: the shortest gives way (it is shorter than this one) */
		slot = 0;
		for (__u32 k = 1; k < AIOCOPD_ITER_TOPS; k++)
			if (t->top[k].duration_ns < t->top[slot].duration_ns)
				slot = k;
	} else {
		st->iter_tops++;
	}
	if (slot >= AIOCOPD_ITER_TOPS)
		return 0;
	t->top[slot].duration_ns = elapsed;
	__builtin_memcpy(&t->top[slot].ident, id, sizeof(*id));
	if (st->iter_tops < AIOCOPD_ITER_TOPS)
		return 0;
	min = t->top[0].duration_ns;
	for (__u32 k = 1; k < AIOCOPD_ITER_TOPS; k++)
		if (t->top[k].duration_ns < min)
			min = t->top[k].duration_ns;
	st->iter_top_min_ns = min;
	return 0;
}

static __always_inline void close_callback(const struct target_cfg *cfg, struct thread_state *st,
					   __u32 pid, __u32 tid, __u64 now)
{
	__u32 scope = st->flags & THREAD_ITERATION ? SCOPE_ITERATION : SCOPE_CALLBACK;
	bool named = st->flags & THREAD_IDENT_DONE;
	struct event_callback *ev;
	struct callback_ident *id;
	__u64 elapsed;

	if (!(st->flags & THREAD_IN_CALLBACK))
		return;
	st->flags &= ~(THREAD_IN_CALLBACK | THREAD_IDENT_DONE | THREAD_ITERATION);
	add_oncpu(st, now);
	elapsed = now - st->cb_start_ns;
	/* a slow scope is its own report: its iteration is not the loop's lag */
	if (elapsed >= cfg->threshold_ns)
		st->flags |= THREAD_ITER_SLOW;
	else if (scope == SCOPE_CALLBACK && named && elapsed > st->iter_top_min_ns)
		keep_top(st, tid, elapsed);
	st->iter_cb_ns += elapsed;
	if (!scope_reported(cfg, st, scope, elapsed))
		return;
	ev = record_reserve(sizeof(*ev), EVENT_CALLBACK, pid, tid, st->cb_start_ns);
	if (!ev)
		return;
	ev->cb_seq = st->cb_seq;
	ev->duration_ns = elapsed;
	ev->oncpu_ns = st->cb_oncpu_ns;
	ev->n_blocking = st->cb_blocking;
	ev->scope = scope;
	ev->pad = 0;
	ev->gc_ns = st->cb_gc_ns;
	ev->folded_ns = st->folded_ns;
	ev->folded = st->folded;
	ev->omitted = st->cb_omitted;
	ev->omitted_ns = st->cb_omitted_ns;
	ev->preempted_ns = st->cb_preempted_ns;
	id = bpf_map_lookup_elem(&idents, &tid);
	ev->ident_valid = id && id->callable;
	if (id)
		__builtin_memcpy(&ev->ident, id, sizeof(*id));
	else
		__builtin_memset(&ev->ident, 0, sizeof(ev->ident));
	/*
	 * A slow callback wakes user space at once, to have its frames named while the target
	 * lives. One reported only because it blocked (--all: maybe every callback) waits for
	 * the drain timer or a filling ring: a wakeup is an IPI the target pays for, and a
	 * consumer woken for each record sleeps, and is woken, for each.
	 */
	bpf_ringbuf_submit(ev, elapsed >= cfg->threshold_ns || ring_filling() ?
			       BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline void open_scope(struct thread_state *st, __u64 now, __u64 args,
				       __u32 iteration)
{
	st->flags |= THREAD_IN_CALLBACK | iteration;
	st->cb_seq++;
	st->cb_start_ns = now;
	st->cb_args = args;
	st->cb_oncpu_ns = 0;
	st->last_on_ns = now;
	st->cb_blocking = 0;
	st->cb_samples = 0;
	st->cb_gc_ns = 0;
	st->last_nr = 0;
	st->folded = 0;
	st->folded_ns = 0;
	st->cb_omitted = 0;
	st->cb_omitted_ns = 0;
	st->cb_preempted_ns = 0;
}

/* The new scope has not been named yet. */
static __always_inline void forget_ident(__u32 tid)
{
	struct callback_ident *id = bpf_map_lookup_elem(&idents, &tid);

	if (id)
		id->callable = 0;
}

#endif /* AIOCOPD_SCOPE_BPF_H */
