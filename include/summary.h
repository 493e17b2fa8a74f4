/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What `aiocopd exec` says of each process it watched when its command ends: how many slow
 * reports of each level, and the entry points of the worst ones.
 */
#ifndef AIOCOPD_SUMMARY_H
#define AIOCOPD_SUMMARY_H

#include <stdint.h>

#include "aiocopd.h"
#include "classify.h"
#include "report.h"

#define SUMMARY_WORST		3	/* worst entry points kept per process */

/* One of the worst entry points of a process, ranked by its longest report. */
struct summary_entry {
	double elapsed_ms;			/* its longest report */
	enum severity_level level;		/* that report's */
	unsigned count;				/* reports from this entry point */
	char what[2 * AIOCOPD_NAME_LEN + 48];	/* task or callback */
	char *where;				/* entry point; NULL: the slot is free */
};

struct proc_summary {
	uint64_t reports_by_level[3];		/* enum severity_level, over the threshold */
	struct summary_entry worst[SUMMARY_WORST];	/* longest first */
};

/* Counts a report and ranks its entry point. */
void summary_note(struct proc_summary *s, const struct report *r);
void summary_free(struct proc_summary *s);

#endif
