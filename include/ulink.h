/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The uprobes of one target process. Where the kernel has uprobe_multi links (Linux 6.6+)
 * they are made with bpf(BPF_LINK_CREATE) and the target's pid as filter, all sites of one
 * program in one link; elsewhere they are libbpf's perf-event uprobes. Closing either kind
 * waits for RCU grace periods (60 to 250 ms each on this kind of VM), so links are closed
 * by a few background threads: releases running at once share their grace periods, and
 * neither a stopped target nor the event loop waits for them.
 */
#ifndef AIOCOPD_ULINK_H
#define AIOCOPD_ULINK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>

#include "elf_file.h"

#define ULINK_MAX_SITES		8	/* offsets one link covers */
#define ULINK_RELEASERS		16	/* threads closing uprobe_multi links at once */

struct ulink;

struct ulinks {
	bool ready;			/* lock and conditions initialised */
	bool multi;			/* uprobe_multi links, else perf-event uprobes */
	pthread_mutex_t lock;
	pthread_cond_t work;		/* a link was released */
	pthread_cond_t done;		/* a released link is closed */
	struct ulink *pending;		/* released and not closed yet, oldest first */
	pthread_t threads[ULINK_RELEASERS];
	size_t n_threads;
	bool stopping;
};

/*
 * Finds out whether the kernel has uprobe_multi links (AIOCOPD_NO_UPROBE_MULTI=1 says to
 * use perf-event uprobes anyway). Before the programs are loaded.
 */
int ulinks_init(struct ulinks *u);
/* Loads prog as a uprobe_multi program when links are made that way: before loading. */
void ulinks_prepare(const struct ulinks *u, struct bpf_program *prog);

/*
 * One program on n sites of the file at path (a uretprobe with retprobe), firing for pid
 * only. A site's ref_ctr_offset is its USDT semaphore, which the kernel counts. Waits for
 * the release of this program's last link to pid, if that is still under way (an exec or
 * a re-arm). NULL with errno set on failure.
 */
struct ulink *ulink_attach(struct ulinks *u, struct bpf_program *prog, pid_t pid,
			   const char *path, const struct elf_usdt_site *sites, size_t n,
			   bool retprobe);
/* Detaches l in the background. NULL does nothing. */
void ulink_release(struct ulinks *u, struct ulink *l);
/* Waits up to timeout_ms for the links released so far to be closed. */
void ulinks_drain(struct ulinks *u, unsigned timeout_ms);
/* Closes what is still pending and stops the threads. */
void ulinks_close(struct ulinks *u);

#endif
