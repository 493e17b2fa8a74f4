// SPDX-License-Identifier: GPL-2.0
/*
 * Holding a process stopped for user space: at its exec and entry point (family.bpf.c) so
 * that user space attaches before the program runs, and at Py_FinalizeEx so that user space
 * names the frames of the process's last reports while its memory is still there.
 *
 * Only user space continues a held process, so holds must never outlive aiocopd, however it
 * ends (SIGKILL, OOM kill, crash). Its links take seconds to go once it dies, and the programs
 * run meanwhile, so when aiocopd's main thread exits (before its files close, which is what
 * detaches the programs):
 *   - owner_gone is set, and from then on nothing is stopped;
 *   - every process still held is continued here (bpf_send_signal_task, Linux 6.13; older
 *     kernels lack it, and only aiocopd itself continues what it holds).
 */
#include "common.bpf.h"
#include "hold.bpf.h"

#define SIGSTOP		19
#define SIGCONT		18

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type,
				__u64 value) __ksym __weak;

/* aiocopd's own tgid, set by the loader. */
const volatile __u32 owner_tgid = 0;
/* Set once aiocopd's main thread is exiting: no one is left to continue what is stopped. */
volatile __u32 owner_gone = 0;

/* The processes stopped for user space and not yet continued, keyed by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);		/* the EVENT_* that stopped it */
} held SEC(".maps");

/* A weak kfunc the kernel lacks resolves to 0, and the verifier drops the calls it guards. */
static __always_inline bool can_continue_others(void)
{
	return bpf_task_from_pid && bpf_task_release && bpf_send_signal_task;
}

__noinline int hold_for_user_space(__u32 type, __u32 pid)
{
	struct event_process *ev;

	/* in the map before the check: an exiting owner either sees it or stopped us */
	if (bpf_map_update_elem(&held, &pid, &type, BPF_ANY)) {
		count_lost(LOST_TABLE_FULL);
		return 0;
	}
	if (owner_gone)
		goto unheld;
	ev = record_reserve(sizeof(*ev), type, pid, pid, bpf_ktime_get_ns());
	if (!ev)
		goto unheld;
	ev->parent = 0;
	ev->pad = 0;
	bpf_send_signal(SIGSTOP);
	record_submit(ev);
	/*
	 * The owner began to exit between the check and the stop, and may have swept already:
	 * a SIGCONT now discards the pending stop.
	 */
	if (owner_gone) {
		bpf_send_signal(SIGCONT);
		goto unheld;
	}
	return 1;
unheld:
	bpf_map_delete_elem(&held, &pid);
	return 0;
}

static long continue_held(struct bpf_map *map, __u32 *pid, __u32 *type, void *ctx)
{
	struct task_struct *task = bpf_task_from_pid(*pid);

	if (task) {
		bpf_send_signal_task(task, SIGCONT, PIDTYPE_TGID, 0);
		bpf_task_release(task);
	}
	bpf_map_delete_elem(map, pid);
	return 0;
}

/*
 * A thread exits. If it is aiocopd's (the first of its threads to go, on SIGKILL), let every
 * held process go; if it is a held process's last, its entry goes.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(hold_exit, struct task_struct *task)
{
	__u32 tid, pid;

	if (!task_ids(task, &tid, &pid))
		return 0;
	/* its main thread: background threads come and go while it runs */
	if (tid == owner_tgid) {
		owner_gone = 1;
		if (can_continue_others())
			bpf_for_each_map_elem(&held, continue_held, NULL, 0);
		return 0;
	}
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		bpf_map_delete_elem(&held, &pid);
	return 0;
}

/*
 * Attached to each watched process's Py_FinalizeEx: the interpreter is about to free what
 * user space reads to name frames. Held here, the process waits until user space has read
 * the records before this one, which are all of its reports.
 */
SEC("uprobe")
int process_finalize(struct pt_regs *ctx)
{
	__u32 tid, pid;

	if (current_ids(&tid, &pid) && bpf_map_lookup_elem(&targets, &pid))
		hold_for_user_space(EVENT_FINALIZE, pid);
	return 0;
}
