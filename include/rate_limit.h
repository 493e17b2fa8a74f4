/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The service's report limit (SPEC 6.3): at most N reports a minute per process and entry
 * point; the rest are counted, and their count is told once the minute is over.
 */
#ifndef AIOCOPD_RATE_LIMIT_H
#define AIOCOPD_RATE_LIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "service_log.h"

#define RATE_LIMIT_WINDOW_NS	(60ull * 1000000000ull)
#define RATE_LIMIT_MAX_KEYS	4096	/* process and entry point pairs tracked at once */

struct rate_limit;

/* per_minute 0: no limit. */
struct rate_limit *rate_limit_new(unsigned per_minute);
void rate_limit_free(struct rate_limit *rl);
void rate_limit_set(struct rate_limit *rl, unsigned per_minute);

enum rate_verdict {
	RATE_WRITE,			/* within the limit */
	RATE_SUPPRESS,			/* over it: counted */
	RATE_UNTRACKED,			/* the table is full: write it, count the loss */
};

/* now_ns: CLOCK_MONOTONIC; wall: wall-clock seconds of now (for the summary's ts). */
enum rate_verdict rate_limit_admit(struct rate_limit *rl, const char *service, pid_t pid,
				   const char *entry_point, uint64_t now_ns, double wall);

/*
 * Tells fn of every window that has ended and held something back, then forgets ended
 * windows. all: every window counts as ended, as at exit. pid > 0: only pid's windows are
 * looked at; with all, as when that process exited. A window told before its minute was
 * over says so in window_s (the seconds it covered). Call it about once a second: a
 * window that ended is told at the first flush after its minute.
 */
void rate_limit_flush(struct rate_limit *rl, uint64_t now_ns, bool all, pid_t pid,
		      void (*fn)(void *ctx, const struct suppressed *s), void *ctx);

#endif
