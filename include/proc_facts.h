/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the service's rules see of a process (SPEC 6.2): its executable as the process sees
 * it, its command line, the systemd unit of its cgroup and its user. Each is read from /proc
 * when first asked for, so that rules on the command line alone cost one read per exec on
 * the host. All of it comes from a process we do not trust: bounded, cut rather than
 * overrun, never trusted as text.
 */
#ifndef AIOCOPD_PROC_FACTS_H
#define AIOCOPD_PROC_FACTS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#define PROC_FACTS_CMDLINE_MAX	4096	/* bytes of the command line rules search */
#define PROC_FACTS_UNIT_MAX	256

enum proc_fact {
	FACT_EXE = 1u << 0,
	FACT_CMDLINE = 1u << 1,
	FACT_UNIT = 1u << 2,
	FACT_UID = 1u << 3,
};

struct proc_facts {
	pid_t pid;
	unsigned have;			/* FACT_* read so far */
	char exe[PATH_MAX];		/* "" when unreadable (a kernel thread, no access) */
	char cmdline[PROC_FACTS_CMDLINE_MAX];	/* arguments joined by spaces */
	bool cmdline_cut;		/* it went on past what is kept */
	char unit[PROC_FACTS_UNIT_MAX];	/* "orders-api.service", "" when none */
	uid_t uid;			/* real uid */
	bool has_uid;
};

/* Nothing read yet. */
void proc_facts_init(struct proc_facts *f, pid_t pid);
/* Each read when first asked for; "" (or false) when it cannot be. */
const char *proc_facts_exe(struct proc_facts *f);
const char *proc_facts_cmdline_of(struct proc_facts *f);
const char *proc_facts_unit(struct proc_facts *f);
bool proc_facts_uid(struct proc_facts *f, uid_t *uid);
/* Whether the process still exists. */
bool proc_alive(pid_t pid);
bool proc_facts_alive(const struct proc_facts *f);

/* The command line alone, arguments joined by spaces; returns whether it was cut short. */
bool proc_facts_cmdline(pid_t pid, char *buf, size_t bufsz);

/*
 * Calls fn for every process /proc lists now (at most PROC_SCAN_MAX entries read).
 * Returns 0, or -errno when /proc cannot be read.
 */
#define PROC_SCAN_MAX		(1u << 22)	/* pid_max's cap */
int proc_for_each_pid(void (*fn)(void *ctx, pid_t pid), void *ctx);

/* The unit named by a cgroup v2 path: its innermost .service or .scope component. */
void proc_facts_unit_of(const char *cgroup_path, char *unit, size_t unitsz);

#endif
