// SPDX-License-Identifier: GPL-2.0
/*
 * Loop threads and their iterations. asyncio's selector loop calls epoll_wait once per
 * iteration and uvloop calls epoll_pwait: a thread of a target seen returning from one is
 * a loop thread, and the time from that return to its next call is one iteration's busy
 * time. Unarmed, that iteration is the scope records belong to; armed, a slow one with no
 * slow callback is the loop's lag; with loop statistics (trace, exec) every iteration is
 * counted and the slow ones recorded.
 */
#include "common.bpf.h"
#include "scope.bpf.h"

/* Too big for the BPF stack: new entries are copied from these zeroed ones. */
static struct loop_stats empty_loop_stats;
static const struct thread_state empty_thread;
static const struct callback_ident empty_ident;

/* An iteration ends (TARGET_STATS): counted in its thread's statistics. */
static __always_inline void count_iteration(__u32 tid, __u64 busy)
{
	struct loop_stats *ls = bpf_map_lookup_elem(&loop_stats, &tid);

	if (!ls)
		return;
	ls->iterations++;
	ls->busy_ns += busy;
	if (busy > ls->max_busy_ns)
		ls->max_busy_ns = busy;
	ls->hist[loop_hist_bucket(busy) & (LOOP_HIST_BUCKETS - 1)]++;
}

/*
 * A slow iteration's record; with lag, the callbacks keep_top kept name the longest ones.
 * Out of line: the copy is long, and every iteration's end would carry it.
 */
static __noinline int emit_iteration(struct thread_state *st, __u32 pid, __u32 tid, __u64 busy,
				     __u32 lag)
{
	struct iteration_tops *t = NULL;
	struct event_iteration *ev;

	ev = record_reserve(sizeof(*ev), EVENT_ITERATION, pid, tid, st->iter_start_ns);
	if (!ev)
		return 0;
	ev->duration_ns = busy;
	ev->callbacks = st->iter_callbacks;
	ev->lag = lag;
	ev->n_top = 0;
	if (lag && st->iter_tops)
		t = bpf_map_lookup_elem(&tops, &tid);
	if (t) {
		ev->n_top = st->iter_tops < AIOCOPD_ITER_TOPS ? st->iter_tops : AIOCOPD_ITER_TOPS;
		__builtin_memcpy(ev->top, t->top, sizeof(ev->top));
	} else {
		__builtin_memset(ev->top, 0, sizeof(ev->top));
	}
	record_submit(ev);
	return 0;
}

/*
 * An iteration ends: counted (TARGET_STATS), and when it was slow, a record for the
 * timeline (TARGET_STATS) or, armed, for a slow_iteration report when several callbacks
 * took the threshold together and none by itself: the loop's lag, which no callback report
 * shows. (Time outside its callbacks, the loop's own or the thread's wait for a CPU
 * between them, is no callback's to name.)
 */
static __always_inline void end_iteration(const struct target_cfg *cfg, struct thread_state *st,
					  __u32 pid, __u32 tid, __u64 now)
{
	__u64 busy;
	bool lag;

	if (!st->iter_start_ns || now < st->iter_start_ns)
		return;
	busy = now - st->iter_start_ns;
	if (cfg->flags & TARGET_STATS)
		count_iteration(tid, busy);
	if (busy < cfg->threshold_ns)
		return;
	lag = (cfg->flags & TARGET_ARMED) && !(st->flags & THREAD_ITER_SLOW) &&
	      st->iter_callbacks >= 2 && st->iter_cb_ns >= cfg->threshold_ns;
	if (lag || (cfg->flags & TARGET_STATS))
		emit_iteration(st, pid, tid, busy, lag);
}

/* The loop waits again: the callback or the iteration that ran ends here. */
static __always_inline void loop_waits(void)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;
	__u64 now;

	st = current_thread(&tid, &pid);
	if (!st)
		return;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return;
	now = bpf_ktime_get_ns();
	close_callback(cfg, st, pid, tid, now);
	end_iteration(cfg, st, pid, tid, now);
	st->iter_start_ns = 0;
}

SEC("tp")
int epoll_enter(void *ctx)
{
	program_begin();
	loop_waits();
	program_end();
	return 0;
}

static __always_inline void add_loop_stats(__u32 pid, __u32 tid)
{
	struct target_cfg *cfg = bpf_map_lookup_elem(&targets, &pid);
	struct loop_stats *ls;

	if (!cfg || !(cfg->flags & TARGET_STATS))
		return;
	bpf_map_update_elem(&loop_stats, &tid, &empty_loop_stats, BPF_NOEXIST);
	ls = bpf_map_lookup_elem(&loop_stats, &tid);
	if (ls)
		ls->pid = pid;
}

/* A thread of a target returns from epoll for the first time: it is a loop thread. */
static __always_inline void add_loop_thread(__u32 pid, __u32 tid)
{
	struct event_loop_thread *ev;
	struct thread_state *st;
	long err;

	/* inserted zeroed and filled in place: the state is too big for the BPF stack */
	err = bpf_map_update_elem(&threads, &tid, &empty_thread, BPF_NOEXIST);
	if (err) {
		if (err == -E2BIG)	/* full, not just there already: say the thread is lost */
			count_lost(LOST_TABLE_FULL);
		return;
	}
	st = bpf_map_lookup_elem(&threads, &tid);
	if (!st)
		return;
	st->pid = pid;
	st->iter_start_ns = bpf_ktime_get_ns();
	st->flags = THREAD_LOOP;
	bpf_map_update_elem(&idents, &tid, &empty_ident, BPF_NOEXIST);
	add_loop_stats(pid, tid);
	ev = record_reserve(sizeof(*ev), EVENT_LOOP_THREAD, pid, tid, bpf_ktime_get_ns());
	if (ev)
		record_submit(ev);
}

/* The loop has work: an iteration starts. */
static __always_inline void loop_has_work(void)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;
	__u64 now;

	st = current_thread(&tid, &pid);
	if (!st) {
		if (bpf_map_lookup_elem(&targets, &pid))
			add_loop_thread(pid, tid);
		return;
	}
	cfg = bpf_map_lookup_elem(&targets, &pid);
	now = bpf_ktime_get_ns();
	st->iter_start_ns = now;
	st->iter_callbacks = 0;
	st->iter_tops = 0;
	st->iter_top_min_ns = 0;
	st->iter_cb_ns = 0;
	st->flags &= ~THREAD_ITER_SLOW;
	/* unarmed, the iteration itself is what gets timed */
	if (cfg && !(cfg->flags & TARGET_ARMED)) {
		open_scope(st, now, 0, THREAD_ITERATION);
		forget_ident(tid);
	}
}

SEC("tp")
int epoll_exit(void *ctx)
{
	program_begin();
	loop_has_work();
	program_end();
	return 0;
}
