// SPDX-License-Identifier: GPL-2.0
/*
 * The scheduler's view of loop threads: on-CPU time of the running callback (sched_switch)
 * and the time it waited for a CPU while runnable (preempted), its identity captured while
 * it is switched out and still readable, and CPU samples, at timer interrupts, that record
 * where a long callback or iteration spends its time.
 */
#include "common.bpf.h"

/* Set by the loader before load; default in include/aiocopd.h. */
const volatile __u32 max_samples_per_scope = AIOCOPD_MAX_SAMPLES_PER_SCOPE;

/*
 * A thread switched out in TASK_RUNNING (0) did not sleep: it was preempted, or yielded,
 * and waits for a CPU. Any other state is a sleep, which the callback's operations explain
 * or not (reasons io_blocking and waiting).
 */
static __always_inline bool still_runnable(bool preempt, struct task_struct *prev)
{
	return preempt || prev->__state == 0;
}

/* The callback's thread is back on CPU: the time it waited for one was preemption. */
static __always_inline void add_preempted(struct thread_state *st, __u64 now)
{
	__u64 since = st->runnable_since_ns;

	st->runnable_since_ns = 0;
	if (!since || !(st->flags & THREAD_IN_CALLBACK))
		return;
	if (since < st->cb_start_ns)
		since = st->cb_start_ns;
	if (since < now)
		st->cb_preempted_ns += now - since;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 prev_tid = 0, next_tid = 0, unused;
	struct thread_state *st;
	__u64 now = 0;

	/* a task outside our PID namespace keeps id 0: no thread of ours has it */
	task_ids(prev, &prev_tid, &unused);
	task_ids(next, &next_tid, &unused);
	st = bpf_map_lookup_elem(&threads, &prev_tid);
	if (st) {
		now = bpf_ktime_get_ns();
		if (st->flags & THREAD_IN_CALLBACK) {
			struct target_cfg *cfg = bpf_map_lookup_elem(&targets, &st->pid);

			add_oncpu(st, now);
			/* still current here, so its memory is readable */
			if (cfg)
				ensure_ident(cfg, st, prev_tid);
		}
		st->last_on_ns = 0;	/* off CPU until it is switched in again */
		st->runnable_since_ns = still_runnable(preempt, prev) ? now : 0;
	}
	st = bpf_map_lookup_elem(&threads, &next_tid);
	if (st) {
		if (!now)
			now = bpf_ktime_get_ns();
		st->last_on_ns = now;
		add_preempted(st, now);
	}
	return 0;
}

static __always_inline void emit_sample(const struct target_cfg *cfg, struct thread_state *st,
					__u32 pid, __u32 tid, __u64 now)
{
	struct event_blocking *ev;

	ev = blocking_reserve(st, pid, tid, now, SOURCE_SAMPLE);
	if (!ev)
		return;
	fill_stack(cfg, st, tid, ev);
	st->cb_samples++;
	record_submit(ev);
}

/*
 * How often a loop thread in a callback is sampled, at most: set by user space
 * (probes_set_sample_period), also while running.
 */
volatile __u64 sample_period_ns = 3000000;

/*
 * A timer expired on this CPU, the scheduler tick among them (an hrtimer in high-resolution
 * mode), in the interrupt of whatever ran: a loop thread in a callback is sampled, once per
 * sample_period_ns at most. The sample identifies the callback and, once that has run for
 * half the threshold, records its stack, so a CPU-bound slow callback shows where its time
 * went. A CPU running a loop thread is busy, so its tick runs (NO_HZ_FULL aside), and the
 * tick is what samples: no timer of ours, neither per CPU (an interrupt per period on idle
 * CPUs too) nor per thread (a perf task-clock event: an hrtimer started and cancelled at
 * each of the thread's context switches). Any other task costs one map lookup per expiry.
 */
SEC("tp_btf/hrtimer_expire_entry")
int BPF_PROG(cpu_sample, struct hrtimer *timer, ktime_t *expires_now)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;
	__u64 now;

	/* in the middle of a program of ours on this CPU: its thread's state is not settled */
	if (program_running())
		return 0;
	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_CALLBACK))
		return 0;
	now = bpf_ktime_get_ns();
	if (now - st->last_sample_ns < sample_period_ns)
		return 0;
	st->last_sample_ns = now;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return 0;
	ensure_ident(cfg, st, tid);
	/* only a callback (or iteration) already running long is worth a stack */
	if (now - st->cb_start_ns >= cfg->sample_after_ns &&
	    st->cb_samples < max_samples_per_scope)
		emit_sample(cfg, st, pid, tid, now);
	return 0;
}
