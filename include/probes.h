/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loading the BPF object and attaching its programs: the system-wide tracepoints once, the
 * uprobes per target process, the CPU-clock sampler per loop thread. Every attachment is a
 * bpf_link owned here, so closing (or dying) detaches everything.
 */
#ifndef AIOCOPD_PROBES_H
#define AIOCOPD_PROBES_H

#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>

#include "aiocopd.h"
#include "target.h"

#define PROBES_MAX_LINKS	512

struct aiocopd_bpf;

struct probes {
	struct aiocopd_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[PROBES_MAX_LINKS];
	size_t n_links;
	int tracepoints_missing;	/* syscall tracepoints this kernel lacks */
	const char *gc_source;		/* how collections are timed, NULL: they are not */
	struct bpf_link *uprobes[4];	/* callback boundaries and audit entry points, armed */
	uint64_t sample_period_ns;
};

typedef int (*probes_event_fn)(void *ctx, void *data, size_t size);

int probes_open(struct probes *p, probes_event_fn fn, void *ctx, char *err, size_t errsz);
/* Registers a target with BPF; it starts unarmed (loop iterations only). */
int probes_add_target(struct probes *p, const struct py_target *t, const struct target_cfg *cfg,
		      char *err, size_t errsz);
/* Arming attaches the per-callback and audit uprobes; disarming detaches them. */
int probes_arm(struct probes *p, const struct py_target *t, char *err, size_t errsz);
void probes_disarm(struct probes *p, const struct py_target *t);
/* Registers a loop thread (if BPF has not yet) and starts its sampler. */
int probes_add_loop_thread(struct probes *p, pid_t pid, pid_t tid);
int probes_consume(struct probes *p);
uint64_t probes_lost(const struct probes *p);
void probes_close(struct probes *p);

#endif
