/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reconstruction: the records of one finished callback become its report. Records merge into
 * operations, the callback is named (from BPF's identity, else from the stacks), CPU samples
 * are grouped by stack and every stack is rendered. The target is only seen through a
 * resolver, so this is tested with a fake one.
 */
#ifndef AIOCOPD_RECONSTRUCT_H
#define AIOCOPD_RECONSTRUCT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiocopd.h"
#include "pylayout.h"
#include "pyresolve.h"
#include "records.h"
#include "report.h"

/* How reconstruction sees the target. */
struct recon_resolver {
	/* Names a frame; the strings need only last until the next call. */
	void (*locate)(void *ctx, uint64_t code, uint64_t instr, struct py_location *loc);
	int (*read_u64)(void *ctx, uint64_t addr, uint64_t *val);
	/* A str object of the target as UTF-8, always terminated. */
	int (*read_str)(void *ctx, uint64_t obj, char *buf, size_t bufsz);
	bool (*uses_uvloop)(void *ctx);
	void *ctx;
	/* where the target's Handles, Tasks and coroutines keep what attribution follows */
	const struct py_version_layout *layout;
};

/* --app-path: at most this many prefixes name the application's own files */
#define RECON_MAX_APP_PATHS	16

struct recon_options {
	double threshold_ms;
	unsigned trace_depth;		/* frames shown per stack */
	/* path prefixes of the application's files; none: "not stdlib, not third-party" */
	const char *app_paths[RECON_MAX_APP_PATHS];
	unsigned n_app_paths;
};

/*
 * Builds the report of the callback cb closed from its records (in arrival order) and what
 * they leave out. Leaves out->ts, the wall-clock time, to the caller. Returns -ENOENT when
 * there is nothing to report (the stacks prove the records ran outside any loop callback,
 * or a callback under the threshold is left with no operation that could block), or
 * -ENOMEM; out then holds nothing to free.
 */
int reconstruct_report(const struct event_callback *cb, const struct record_set *set,
		       const struct recon_resolver *res, const struct recon_options *opt,
		       struct report *out);

/* One callback's records of a slow loop iteration, and the iteration bounded to them. */
struct recon_part {
	struct record_set set;		/* its own array of the records, which stay the caller's */
	struct event_callback cb;
};

/*
 * Unarmed, a slow iteration's records may come from several callbacks: this splits them by
 * the callback their stacks show, for one report each (reconstruct_report), so that each
 * names its own callback and events. Only the callbacks that blocked, or held the loop a
 * threshold by themselves, are parts; one callback, or none told apart, is one part: the
 * iteration as it came. A callback record is one part. Returns 0 or -ENOMEM; free *out
 * with recon_parts_free.
 * When the iteration had several callbacks and none is a part by itself (the loop's lag),
 * every callback is one and *lag says so: they make one slow_iteration report.
 */
int reconstruct_split_iteration(const struct event_callback *it, const struct record_set *set,
				const struct recon_resolver *res, const struct recon_options *opt,
				struct recon_part **out, size_t *n_out, bool *lag);

/*
 * The slow_iteration report of an iteration whose n callbacks (parts) were each too small
 * to blame: how many were seen and the most sampled ones, with an estimate of their time
 * from their share of the samples. Returns 0 or -ENOMEM (out then holds nothing to free).
 */
int reconstruct_slow_iteration(const struct event_callback *it, const struct recon_part *parts,
			       size_t n, const struct recon_resolver *res,
			       const struct recon_options *opt, struct report *out);
void recon_parts_free(struct recon_part *parts, size_t n);

/*
 * Armed, the slow_iteration report of an iteration BPF found to be the loop's lag (ev->lag):
 * its callback count, and its longest named callbacks with their exact times, longest
 * first. Returns 0 or -ENOMEM (out then holds nothing to free).
 */
int reconstruct_lag_iteration(const struct event_iteration *ev, const struct recon_resolver *res,
			      const struct recon_options *opt, struct report *out);

#endif
