/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where the service writes what it finds (SPEC 6.3): the journal (one entry per report, its
 * fields as AIOCOPD_*), a JSON-lines file (reopened on SIGUSR1, for logrotate) or stdout.
 * Every record is written whole or not at all, and a refused one is counted by the caller.
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

struct service_log;

/* path: the file of SERVICE_LOG_FILE. Returns 0, or a negative errno with a line in err. */
int service_log_open(struct service_log **out, enum service_log_kind kind, const char *path,
		     char *err, size_t errsz);
void service_log_close(struct service_log *l);

/*
 * One report: SPEC 3's object with "service" and "cmdline" added. Returns 0, or a negative
 * errno when nothing was written.
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

int service_log_suppressed(struct service_log *l, const struct suppressed *s);
/* Reopens the file at its path (SIGUSR1); 0 for the journal and stdout. */
int service_log_reopen(struct service_log *l);

#endif
