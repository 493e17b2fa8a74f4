/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Discovery for `aiocopd service` (SPEC 6.3): the processes running at start are examined
 * once, new ones as BPF sees them exec, a watched process's forks as they happen. Nothing
 * is ever stopped: a process whose runtime is not mapped yet (its dynamic loader still runs)
 * is looked at again a little later, for a while, and watched once it can be.
 */
#ifndef AIOCOPD_DISCOVER_H
#define AIOCOPD_DISCOVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "engine.h"
#include "metrics.h"
#include "proc_facts.h"

#define DISCOVER_RETRY_FOR_MS	30000	/* how long a matching non-CPython is looked at again */
#define DISCOVER_MAX_PENDING	4096	/* processes waiting to be looked at again */

struct discoverer;

struct discover_hooks {
	/* the rule that selects a process, or NULL: not to be watched (opaque here) */
	const void *(*select)(void *ctx, struct proc_facts *f);
	/* now watched, selected by rule */
	void (*watched)(void *ctx, struct watched *w, const void *rule);
	/* child, a fork of the watched parent, is watched too */
	void (*adopted)(void *ctx, struct watched *parent, struct watched *child);
	/* a selected process could not be watched */
	void (*failed)(void *ctx, pid_t pid, enum attach_failure why, const char *msg);
	void *ctx;
};

int discover_open(struct discoverer **out, struct engine *e, sd_event *loop,
		  const struct discover_hooks *hooks);
/* Looks at every running process now (at start, and after a reload). */
void discover_scan(struct discoverer *d);
/* Processes selected but not watched yet (looked at again later). */
size_t discover_pending(const struct discoverer *d);
void discover_close(struct discoverer *d);

#endif
