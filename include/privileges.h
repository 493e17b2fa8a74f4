/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What aiocopd needs the kernel to allow, in one table: each operation, the capability it
 * takes and what for. Checked up front where the answer can be known (capget, a probe of
 * perf uprobes), and used to explain an EPERM or EACCES at the operation that met it, so
 * every refusal is one line naming the missing capability and its purpose.
 */
#ifndef AIOCOPD_PRIVILEGES_H
#define AIOCOPD_PRIVILEGES_H

#include <stdbool.h>
#include <stddef.h>

enum privilege {
	PRIV_BPF,		/* load BPF programs and create their maps */
	PRIV_PERFMON,		/* attach them: tracepoints, uprobe_multi links, perf events */
	PRIV_PTRACE,		/* read a target's /proc files and memory */
	PRIV_TRACEFS_READ,	/* look tracepoints up in tracefs (root's, mode 0700) */
	PRIV_TRACEFS_MOUNT,	/* mount tracefs where it is not mounted */
	PRIV_PERF_UPROBES,	/* uprobes made through perf_event_open */
	PRIV_MAP_FILES,		/* open a mapped file through /proc/PID/map_files/ */
	PRIV_COUNT
};

/* Whether our effective capabilities include what p needs (true when we cannot tell). */
bool privileges_have(enum privilege p);

/*
 * Checks what every command needs before it starts (BPF, PERFMON, PTRACE). Returns true,
 * or false with one line "missing privileges: CAP_X (needed to ...)[, CAP_Y (...)]" in msg.
 */
bool privileges_check_start(char *msg, size_t msgsz);

/* Whether this process may create perf-event uprobes (asks the kernel; attaches nothing). */
bool privileges_perf_uprobes_allowed(void);

/* Writes "missing privileges: CAP_X (needed to ...)" for p into msg; returns -EPERM. */
int privileges_fail(enum privilege p, char *msg, size_t msgsz);

/* Whether err (positive or negative errno) is the kernel refusing a privilege. */
bool privileges_denied(int err);

#endif
