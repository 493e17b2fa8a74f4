/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Detaching in the background. Closing a perf-event based probe waits for an RCU grace period
 * in the kernel (tens of ms each on a small VM): done on the event loop, that wait would
 * hold up the reports of every target, and a process that exits right after its slow
 * callback would be gone before its report is read. A worker thread closes them instead.
 */
#ifndef AIOCOPD_DETACH_H
#define AIOCOPD_DETACH_H

#include <stdbool.h>
#include <stddef.h>

struct bpf_link;
struct detacher;

int detacher_start(struct detacher **out);
/* Hands a link over to be destroyed soon (NULL is ignored; on error it is destroyed now). */
void detacher_put(struct detacher *d, struct bpf_link *link);
/* Destroys what is still queued, then stops the worker. */
void detacher_stop(struct detacher *d);
/* Links destroyed so far, for tests and -v. */
size_t detacher_done(struct detacher *d);

#endif
