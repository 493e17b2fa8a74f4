/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Process following: which new processes the engine watches. BPF tells of the exec, fork
 * and exit of followed processes; a selector callback decides what is watched. `aiocopd
 * exec` follows its command's family from the first instruction: BPF stops each exec'd
 * member before it runs, we probe its ELF entry point (where the dynamic loader has mapped
 * libpython), and there inspect it and attach before any Python code runs. `aiocopd -p` and
 * `trace` follow only their target's execs, so that a target that becomes another CPython
 * is watched again.
 */
#ifndef AIOCOPD_FOLLOW_H
#define AIOCOPD_FOLLOW_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine.h"

struct follower;

struct follow_hooks {
	/* whether to watch a CPython process (t) that reached its entry point; NULL: all */
	bool (*select)(void *ctx, const struct py_target *t);
	/* a followed process that exec'd is running on, watched or not (why: a message) */
	void (*decided)(void *ctx, pid_t pid, bool watched, const char *why);
	void *ctx;
};

/* hooks may be NULL: every CPython is watched, and nothing is told. */
int follow_open(struct follower **out, struct engine *e, const struct follow_hooks *hooks);
/* Follows pid and everything it starts from now on. */
int follow_family(struct follower *f, pid_t pid);
/* Follows pid's execs only (its forks are not followed). */
int follow_execs(struct follower *f, pid_t pid);
/* The command is ending: nothing is stopped any more, and every process still held goes. */
void follow_release_all(struct follower *f);
void follow_close(struct follower *f);

#endif
