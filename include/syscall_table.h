/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The syscalls aiocopd traces, in one table: number (from <asm/unistd.h>), the name reports
 * use, the tracepoints the loader attaches to, how a record of it is classified, and the
 * argument properties the BPF programs need (copied into their "syscall_props" map).
 */
#ifndef AIOCOPD_SYSCALL_TABLE_H
#define AIOCOPD_SYSCALL_TABLE_H

#include <stddef.h>

#include "aiocopd.h"

/* How src/classify.c names and weighs a record of the syscall. */
enum syscall_kind {
	SYSCALL_OTHER = 0,		/* "name()" */
	SYSCALL_LOOP_WAIT,		/* epoll: bounds loop iterations, never a record */
	SYSCALL_SLEEP,			/* a relative sleep */
	SYSCALL_CLOCK_SLEEP,		/* time.sleep when absolute on CLOCK_MONOTONIC */
	SYSCALL_SELECT,			/* a sleep when its first argument (nfds) is 0 */
	SYSCALL_POLL,			/* a sleep when its second argument (nfds) is 0 */
	SYSCALL_OPEN,
	SYSCALL_STAT,			/* looks at a path */
	SYSCALL_PATH_CHANGE,		/* creates, removes or renames a path */
	SYSCALL_LISTDIR,
	SYSCALL_FD_IO,
	SYSCALL_SENDTO,			/* fd I/O with a destination address */
	SYSCALL_CONNECT,
	SYSCALL_ACCEPT,
	SYSCALL_FORK,
	SYSCALL_EXEC,
	SYSCALL_WAIT_CHILD,
	SYSCALL_LOCK,
	SYSCALL_KILL,
	SYSCALL_FUTEX,			/* a thread-lock wait when its op waits */
};

struct syscall_info {
	unsigned int nr;
	const char *name;		/* as reports show it */
	enum syscall_kind kind;
	struct syscall_props props;	/* argument numbers count from 1; 0: none */
	const char *event;		/* syscalls/sys_{enter,exit}_EVENT; NULL: name */
};

extern const struct syscall_info syscall_table[];
extern const size_t syscall_table_len;

/* The entry of a traced syscall, NULL for any other number. */
const struct syscall_info *syscall_info(unsigned int nr);

/* The name of its tracepoints (syscalls/sys_enter_NAME, syscalls/sys_exit_NAME). */
const char *syscall_event(const struct syscall_info *s);

#endif
