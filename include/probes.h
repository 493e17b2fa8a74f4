/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loading the BPF object and attaching its programs: the system-wide tracepoints once, the
 * uprobes per target process. Every attachment is a link owned here, so closing (or dying)
 * detaches everything; a target's uprobes are detached in the background (ulink.h).
 */
#ifndef AIOCOPD_PROBES_H
#define AIOCOPD_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>

#include "aiocopd.h"
#include "target.h"
#include "ulink.h"

#define PROBES_MAX_LINKS	512

struct aiocopd_bpf;

/* The uprobes of an armed target, in the order they attach (context_run, last, arms it). */
enum uprobe_slot {
	UPROBE_AUDIT,			/* PySys_Audit, or sys_audit_tstate where both meet */
	UPROBE_AUDIT_TSTATE,		/* _PySys_Audit, CPython's own callers */
	UPROBE_CONTEXT_ENTER,		/* PyContext_Enter: uvloop's callbacks */
	UPROBE_CONTEXT_RUN,		/* context_run: every other callback */
	UPROBE_SLOTS,
};

/* The attachments that belong to one target process. */
struct target_links {
	struct ulink *uprobes[UPROBE_SLOTS];	/* callback boundaries and audit entry points */
	struct ulink *gc[2];		/* collection start and end */
	const char *gc_source;		/* how collections are timed, NULL: they are not */
	struct ulink *finalize;		/* holds the process at Py_FinalizeEx */
};

struct probes {
	struct aiocopd_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[PROBES_MAX_LINKS];
	size_t n_links;
	struct ulinks ulinks;		/* per-target uprobes */
	int tracepoints_missing;	/* syscall tracepoints this kernel lacks */
};

typedef int (*probes_event_fn)(void *ctx, void *data, size_t size);

int probes_open(struct probes *p, probes_event_fn fn, void *ctx, char *err, size_t errsz);
/* Registers a target with BPF; it starts unarmed (loop iterations only) unless cfg says. */
int probes_add_target(struct probes *p, const struct py_target *t, const struct target_cfg *cfg,
		      struct target_links *l, char *err, size_t errsz);
/*
 * The uprobes a target has armed or not: collections are timed (gc_collect_main, or its USDT
 * probes), and (hold_at_exit) Py_FinalizeEx holds it until its last records are read.
 */
void probes_attach_always(struct probes *p, const struct py_target *t, struct target_links *l,
			  bool hold_at_exit);
/* Forgets a target (it exited or exec'd): its links go, its map entry too. */
void probes_remove_target(struct probes *p, pid_t pid, struct target_links *l);
/* Arming attaches the per-callback and audit uprobes; disarming detaches them. */
int probes_arm(struct probes *p, const struct py_target *t, struct target_links *l,
	       char *err, size_t errsz);
void probes_disarm(struct probes *p, const struct py_target *t, struct target_links *l);
/* Registers a loop thread, if BPF has not yet. */
void probes_add_loop_thread(struct probes *p, pid_t pid, pid_t tid, bool stats);
/* A thread leaves: its entries in every per-thread map go (statistics taken first). */
void probes_forget_thread(struct probes *p, pid_t tid);
/* A loop thread's statistics (TARGET_STATS), taken out of the map, or only read. */
int probes_take_loop_stats(struct probes *p, pid_t tid, struct loop_stats *out);
int probes_read_loop_stats(struct probes *p, pid_t tid, struct loop_stats *out);
/* New options for a registered target; the CPU samples' period follows the threshold. */
int probes_update_target(struct probes *p, pid_t pid, const struct target_cfg *cfg);
void probes_set_sample_period(struct probes *p, double threshold_ms);

/* `aiocopd exec`: follow pid and what it starts; stop an exec'd process at its entry. */
/* flags: FAMILY_MEMBER (its forks join), FAMILY_EXECS_ONLY or FAMILY_UNHELD. */
int probes_follow(struct probes *p, pid_t pid, __u32 flags);
/* `aiocopd service`: BPF tells of every exec on the host (EVENT_EXEC_SEEN). */
void probes_discover_execs(struct probes *p, bool on);
/* Continues a process BPF held stopped for us (bpf/hold.bpf.c). */
void probes_continue(struct probes *p, pid_t pid);
void probes_stop_following(struct probes *p);
struct ulink *probes_stop_at_entry(struct probes *p, pid_t pid, const char *path,
				   uint64_t offset);
/* Takes the entry stop off (in the background: the process need not wait). NULL is fine. */
void probes_release_stop(struct probes *p, struct ulink *stop);

int probes_ring_fd(const struct probes *p);
int probes_consume(struct probes *p);
/* Records BPF could not keep, for one LOST_* reason. */
uint64_t probes_lost(const struct probes *p, unsigned why);
void probes_close(struct probes *p);

#endif
