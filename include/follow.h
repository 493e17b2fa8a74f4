/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Process following: which new processes the engine watches. BPF tells of the exec, fork
 * and exit of followed processes; a selector callback decides what is watched. `aiocopd
 * exec` follows its command's family from the first instruction: BPF stops each exec'd
 * member before it runs, we probe its ELF entry point (where the dynamic loader has mapped
 * libpython), and there inspect it and attach before any Python code runs.
 */
#ifndef AIOCOPD_FOLLOW_H
#define AIOCOPD_FOLLOW_H

#include <stdbool.h>
#include <sys/types.h>

#include "engine.h"

struct follower;

/* Whether to watch pid, a CPython process (t) that reached its entry point. */
typedef bool (*follow_select_fn)(void *ctx, const struct py_target *t);

int follow_open(struct follower **out, struct engine *e, follow_select_fn select, void *ctx);
/* Follows pid and everything it starts from now on. */
int follow_family(struct follower *f, pid_t pid);
/* The command is ending: nothing is stopped any more, and every process still held goes. */
void follow_release_all(struct follower *f);
void follow_close(struct follower *f);

#endif
