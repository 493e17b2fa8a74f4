/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Grouped repeats in text output (SPEC section 2): after the first GROUP_FULL_REPORTS full
 * reports of one task or callback at one entry point in a minute, further ones are only
 * counted, and shown as one line per GROUP_LINE_EVERY_S seconds:
 * "… 14 more like this at app.py:58 (worst 91.2ms)". A task is its coroutine here, so the
 * Task-1, Task-2, ... a server starts per request group together. JSON is never grouped.
 * Times are the caller's CLOCK_MONOTONIC nanoseconds, so the logic is pure.
 */
#ifndef AIOCOPD_TEXT_GROUP_H
#define AIOCOPD_TEXT_GROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

#define GROUP_FULL_REPORTS	3
#define GROUP_WINDOW_S		60
#define GROUP_LINE_EVERY_S	10
#define GROUP_MAX		256	/* groups remembered; the stalest goes first */
#define GROUP_KEY_MAX		1024	/* bytes of a name or entry point compared */

struct report_group {
	uint32_t pid;
	char *what;			/* "coro NAME" or "callback NAME" */
	char *where;			/* entry point */
	uint64_t window_start_ns;	/* its minute began with this full report */
	unsigned shown;			/* full reports in this minute */
	uint64_t held;			/* counted since its last line */
	double held_worst_ms;
	uint64_t held_since_ns;		/* the last line, or the first report held after it */
	uint64_t last_seen_ns;
};

struct report_groups {
	struct report_group group[GROUP_MAX];
	size_t n;
};

/* Called with a group whose held reports are to be shown as one line; its count restarts. */
typedef void (*group_line_fn)(void *ctx, const struct report_group *g);

/*
 * Whether r is to be written in full (true) or was counted (false). A group whose minute is
 * over, or that has to make room, has its held line said first.
 */
bool groups_admit(struct report_groups *gs, const struct report *r, uint64_t now_ns,
		  group_line_fn line, void *ctx);
/* Says the line of every group holding reports for GROUP_LINE_EVERY_S (all: of every one). */
void groups_flush(struct report_groups *gs, uint64_t now_ns, bool all, group_line_fn line,
		  void *ctx);
void groups_free(struct report_groups *gs);
/* Writes a group's line, "… N more like this at FILE:LINE (worst X ms)", ending in '\n'. */
void group_write_line(FILE *out, const struct report_group *g);

#endif
