/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where the service writes what it finds (SPEC 6.3): the journal (one entry per report, its
 * fields as AIOCOPD_*), a JSON-lines file (reopened on SIGUSR1, for logrotate) or stdout.
 * Every record is written whole or not at all, and a refused one is counted by the caller.
 * A file or stdout gets one JSON line per record, in one write(2); the journal one entry
 * through the native protocol, MESSAGE the report's first text line, PRIORITY 4/5/6 for
 * high/medium/low, CODE_FILE/CODE_LINE/CODE_FUNC the Python entry point. One thread uses
 * a service_log at a time.
 */
#ifndef AIOCOPD_SERVICE_LOG_H
#define AIOCOPD_SERVICE_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "report.h"

enum service_log_kind {
	SERVICE_LOG_JOURNAL,
	SERVICE_LOG_STDOUT,
	SERVICE_LOG_FILE,
};

/* Bytes of a command line written; a longer one is cut there and ends in "…". */
#define SERVICE_LOG_CMDLINE_MAX	4096

struct service_log;

/*
 * path: the file of SERVICE_LOG_FILE, created 0640 and appended to. Returns 0, or a
 * negative errno with one line in err ("log file:/x/y: Permission denied").
 */
int service_log_open(struct service_log **out, enum service_log_kind kind, const char *path,
		     char *err, size_t errsz);
void service_log_close(struct service_log *l);

/*
 * One report: SPEC 3's object with "service" and "cmdline" added. Returns 0, or a negative
 * errno when it was not written (a line cut short by a full disk is ended, never continued
 * by the next record; a missing journal socket is -ENOENT).
 */
int service_log_report(struct service_log *l, const struct report *r, const char *service,
		       const char *cmdline);

/* What the rate limiter held back of one process and entry point over one minute. */
struct suppressed {
	const char *service;
	pid_t pid;
	const char *entry_point;
	uint64_t count;
	double ts;			/* wall-clock start of the minute */
	double window_s;
};

/* {"type": "suppressed", "ts", "service", "pid", "entry_point", "count", "window_s"} */
int service_log_suppressed(struct service_log *l, const struct suppressed *s);
/*
 * Reopens the file at its path (SIGUSR1); 0 for the journal and stdout. When the path
 * cannot be opened, the old file is kept and written to, and the error returned.
 */
int service_log_reopen(struct service_log *l);

#endif
