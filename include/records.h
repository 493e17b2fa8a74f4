/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Record buffering: the blocking records of each thread's current callback, kept until the
 * callback record that closes them arrives, and the names of the files each process opened,
 * so that a record says what its fd was when it happened. What a thread or a process brought
 * stays until it is forgotten.
 */
#ifndef AIOCOPD_RECORDS_H
#define AIOCOPD_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "aiocopd.h"

#define RECORDS_MAX_FD_NAMES	4096	/* names of opened fds kept per process; others from /proc */

/* A blocking record kept for its callback. */
struct record {
	struct event_blocking *ev;	/* only ev->n_frames frames are stored */
	char *fd_path;			/* what its fd named when it arrived; NULL: none known */
};

/*
 * The records of one callback, in arrival order, taken out of the buffer, and what of the
 * callback no record shows: operations BPF did not record and records over the cap here.
 */
struct record_set {
	struct record *recs;
	size_t n;
	uint64_t omitted;		/* operations not itemised */
	uint64_t omitted_ns;		/* their time, as far as it was measured */
};

struct records_stats {
	size_t processes;
	size_t threads;
	size_t records;			/* kept, waiting for their callback's end */
	size_t slots;			/* room allocated for records */
	size_t fd_names;
	uint64_t dropped;		/* missing from their report: over the cap, or no memory */
	uint64_t unreported;		/* their callback ended unreported, or was forgotten */
};

struct record_buffer;

struct record_buffer *records_new(void);
void records_free(struct record_buffer *b);
/* Keeps a record under its thread's current callback; a newer callback drops older records. */
void records_add(struct record_buffer *b, const struct event_blocking *ev);
/* Hands over the records of the callback that cb closes (none if they are not kept). */
struct record_set records_take(struct record_buffer *b, const struct event_callback *cb);
void record_set_free(struct record_set *s);
/* A thread or a process is gone: what it brought goes too. */
void records_forget_thread(struct record_buffer *b, pid_t pid, pid_t tid);
void records_forget_process(struct record_buffer *b, pid_t pid);
void records_stats(const struct record_buffer *b, struct records_stats *st);

#endif
