// SPDX-License-Identifier: GPL-2.0
/*
 * The processes `aiocopd exec` follows ("family"): what the command forks joins, what
 * execs is held at the exec and again at its entry point so that user space can attach
 * before the program runs (hold.bpf.c), and every exiting thread's entries go. `aiocopd
 * service` holds nothing: it hears of every exec on the host and of its targets' forks.
 */
#include "common.bpf.h"
#include "hold.bpf.h"

/* `aiocopd service`: every exec on the host is told to user space (set after loading). */
volatile __u32 discover_execs = 0;

/* FAMILY_* flags, keyed by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} family SEC(".maps");

static __always_inline struct event_process *process_reserve(__u32 type, __u32 pid, __u32 tid,
							       __u32 parent)
{
	struct event_process *ev;

	ev = record_reserve(sizeof(*ev), type, pid, tid, bpf_ktime_get_ns());
	if (!ev)
		return NULL;
	ev->parent = parent;
	ev->pad = 0;
	return ev;
}

static __always_inline void emit_process(__u32 type, __u32 pid, __u32 tid, __u32 parent)
{
	struct event_process *ev = process_reserve(type, pid, tid, parent);

	if (ev)
		record_submit(ev);
}

/*
 * A thread exits: its state goes, and user space hears of loop threads and of the end of a
 * process it knows, so it can free what that process brought. signal->live is already down
 * when the tracepoint fires: 0 means this is the process's last thread.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *task)
{
	struct thread_state *st;
	__u32 tid, pid;
	bool known;

	if (!task_ids(task, &tid, &pid))
		return 0;
	st = bpf_map_lookup_elem(&threads, &tid);
	if (st) {
		if (st->flags & THREAD_LOOP)
			emit_process(EVENT_THREAD_EXIT, pid, tid, 0);
		bpf_map_delete_elem(&threads, &tid);
		bpf_map_delete_elem(&idents, &tid);
		bpf_map_delete_elem(&tops, &tid);
		bpf_map_delete_elem(&stack_bottoms, &tid);
	}
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	known = bpf_map_lookup_elem(&targets, &pid) || bpf_map_lookup_elem(&family, &pid);
	bpf_map_delete_elem(&targets, &pid);
	bpf_map_delete_elem(&family, &pid);
	if (known)
		emit_process(EVENT_EXIT, pid, tid, 0);
	return 0;
}

/*
 * A new process of the family joins it. A fork of a target runs the same interpreter at the
 * same addresses, so it is a target at once, unarmed until user space attaches its uprobes.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptid, ptgid, pid, ctgid, member;
	struct target_cfg *cfg, copy;
	__u32 *flags;

	if (child->tgid != child->pid || !task_ids(parent, &ptid, &ptgid) ||
	    !task_ids(child, &pid, &ctgid))
		return 0;
	flags = bpf_map_lookup_elem(&family, &ptgid);
	if (!flags || !(*flags & (FAMILY_MEMBER | FAMILY_UNHELD)))
		return 0;
	member = *flags & (FAMILY_MEMBER | FAMILY_UNHELD);
	if (bpf_map_update_elem(&family, &pid, &member, BPF_ANY)) {
		count_lost(LOST_TABLE_FULL);	/* it will run unwatched */
		return 0;
	}
	cfg = bpf_map_lookup_elem(&targets, &ptgid);
	if (!cfg)
		return 0;
	__builtin_memcpy(&copy, cfg, sizeof(copy));
	copy.flags &= ~TARGET_ARMED;
	if (bpf_map_update_elem(&targets, &pid, &copy, BPF_ANY)) {
		count_lost(LOST_TABLE_FULL);
		return 0;
	}
	emit_process(EVENT_FORK, pid, pid, ptgid);
	return 0;
}

/*
 * A family process replaced its program. Stop it before its first instruction: user space
 * puts a probe on its entry point, where the libraries it needs (libpython) are mapped.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid, tid, *flags;

	if (!current_ids(&tid, &pid))
		return 0;
	flags = bpf_map_lookup_elem(&family, &pid);
	if (!flags || (*flags & FAMILY_UNHELD)) {
		if (flags || discover_execs)
			emit_process(EVENT_EXEC_SEEN, pid, tid, 0);
		if (!flags)
			return 0;
	}
	/* the old image's layout and thread state mean nothing now */
	bpf_map_delete_elem(&targets, &pid);
	bpf_map_delete_elem(&threads, &tid);
	bpf_map_delete_elem(&idents, &tid);
	bpf_map_delete_elem(&tops, &tid);
	bpf_map_delete_elem(&stack_bottoms, &tid);
	if (*flags & FAMILY_UNHELD) {
		bpf_map_delete_elem(&family, &pid);	/* user space decides anew */
		return 0;
	}
	if (hold_for_user_space(EVENT_EXEC, pid))
		*flags |= FAMILY_AWAIT_ENTRY;
	return 0;
}

/* Attached to one exec'd process at its ELF entry point: stop it there once. */
SEC("uprobe")
int process_entry(struct pt_regs *ctx)
{
	__u32 tid, pid, *flags;

	if (!current_ids(&tid, &pid))
		return 0;
	flags = bpf_map_lookup_elem(&family, &pid);
	if (!flags || !(*flags & FAMILY_AWAIT_ENTRY))
		return 0;
	*flags &= ~FAMILY_AWAIT_ENTRY;
	hold_for_user_space(EVENT_ENTRY, pid);
	return 0;
}
