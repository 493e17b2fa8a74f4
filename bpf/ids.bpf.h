/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The ids of tasks as aiocopd's own PID namespace numbers them. Every map and record is keyed
 * by those: they are what user space finds in its /proc, passes to perf_event_open and
 * kill(), and what uprobe_multi links take. On the host (level 0) they are the kernel's own
 * tgid and pid, read as cheaply as ever; inside a container (systemd-nspawn, a pod) they are
 * the numbers our level of the task's struct pid holds, and a task outside our namespace
 * has none: it is not ours to watch.
 */
#ifndef AIOCOPD_IDS_BPF_H
#define AIOCOPD_IDS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define PID_NS_LEVELS		32	/* the kernel's MAX_PID_NS_LEVEL */

/*
 * aiocopd's PID namespace (bpf/maps.bpf.c): its inode, 0 when it is the initial one. Its
 * level cannot be learnt from inside (our /proc shows no level above ours), so the first
 * task of ours to pass says it: the level at which its struct pid holds our namespace.
 */
extern const volatile __u32 owner_pidns_inum;
extern __u32 owner_pidns_level_plus1;

static __always_inline __u32 ns_inum_at(struct pid *p, __u32 level)
{
	struct pid_namespace *ns = NULL;

	if (level >= PID_NS_LEVELS ||
	    bpf_core_read(&ns, sizeof(ns), &p->numbers[level].ns) || !ns)
		return 0;
	return BPF_CORE_READ(ns, ns.inum);
}

/* Our namespace's level, found once; -1 while no task of ours has been seen. */
static __always_inline int owner_level(struct pid *p)
{
	__u32 top = BPF_CORE_READ(p, level);

	if (owner_pidns_level_plus1)
		return owner_pidns_level_plus1 - 1;
	for (__u32 level = 0; level < PID_NS_LEVELS && level <= top; level++) {
		if (ns_inum_at(p, level) == owner_pidns_inum) {
			owner_pidns_level_plus1 = level + 1;
			return level;
		}
	}
	return -1;
}

/* The number a struct pid has in aiocopd's namespace, 0 when it has none there. */
static __always_inline __u32 pid_nr_in_owner_ns(struct pid *p)
{
	int level, nr = 0;

	if (!p)
		return 0;
	level = owner_level(p);
	if (level < 0 || level >= PID_NS_LEVELS || BPF_CORE_READ(p, level) < (__u32)level ||
	    ns_inum_at(p, level) != owner_pidns_inum)
		return 0;
	if (bpf_core_read(&nr, sizeof(nr), &p->numbers[level].nr) || nr <= 0)
		return 0;
	return nr;
}

/* task's thread id and process id as we number them; false: it is outside our namespace. */
static __always_inline bool task_ids(struct task_struct *task, __u32 *tid, __u32 *pid)
{
	if (!owner_pidns_inum) {
		*tid = BPF_CORE_READ(task, pid);
		*pid = BPF_CORE_READ(task, tgid);
		return true;
	}
	*tid = pid_nr_in_owner_ns(BPF_CORE_READ(task, thread_pid));
	*pid = pid_nr_in_owner_ns(BPF_CORE_READ(task, group_leader, thread_pid));
	return *tid && *pid;
}

static __always_inline bool current_ids(__u32 *tid, __u32 *pid)
{
	__u64 id;

	if (owner_pidns_inum)
		return task_ids(bpf_get_current_task_btf(), tid, pid);
	id = bpf_get_current_pid_tgid();
	*tid = (__u32)id;
	*pid = id >> 32;
	return true;
}

#endif
