/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What `aiocopd exec` and the live monitor say of each process they watched at the end: how
 * many slow reports of each level, and the entry points of the worst ones.
 */
#ifndef AIOCOPD_SUMMARY_H
#define AIOCOPD_SUMMARY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

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
	uint64_t slow_iterations;		/* the loop's lag: no callback, no level */
	double worst_iteration_ms;
};

/* e becomes r's entry (count 1); what e held is freed. */
void summary_entry_set(struct summary_entry *e, const struct report *r);
/* Counts a report and ranks its entry point; a slow_iteration is only counted. */
void summary_note(struct proc_summary *s, const struct report *r);
void summary_free(struct proc_summary *s);
/* Whether any report over the threshold was counted, slow iterations included. */
bool summary_any_slow(const struct proc_summary *s);
/* "slow: N high, N medium, N low" (and "; N slow loop iteration(s), worst X ms"), no newline. */
void summary_write_counts(FILE *out, const struct proc_summary *s);
/* One line per worst entry point, each after indent: "2x, worst 61.2ms high: task ... at ...". */
void summary_write_worst(FILE *out, const struct proc_summary *s, const char *indent);

/*
 * exec's exit status (SPEC section 2): CMD's own when it failed (status != 0), else
 * violation_status when --fail-on was met, else 0.
 */
int summary_exit_status(int cmd_status, uint64_t violations, int violation_status);

#endif
