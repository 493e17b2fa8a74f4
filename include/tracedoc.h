/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The one-shot documents of `aiocopd trace` and `aiocopd exec -o`: the trace JSON
 * (docs/trace-format.md, docs/trace.schema.json) and the Trace Event Format timeline that
 * Perfetto and chrome://tracing open. Both are built from the same reports as the live
 * output, so a report reads the same everywhere.
 */
#ifndef AIOCOPD_TRACEDOC_H
#define AIOCOPD_TRACEDOC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "aiocopd.h"
#include "engine.h"
#include "report.h"
#include "target.h"

#define TRACEDOC_FORMAT_VERSION	1
#define TRACEDOC_MAX_REPORTS	100000	/* reports kept in one document; the rest are counted */
#define TRACEDOC_MAX_SLICES	400000	/* timeline events kept */
#define TRACEDOC_MAX_LOOPS	AIOCOPD_MAX_LOOPS
#define TRACEDOC_MAX_TOP	4096	/* distinct entry points grouped */

enum tracedoc_format { TRACEDOC_JSON, TRACEDOC_CHROME };

/* Slow callbacks counted per loop thread, by severity level. */
struct tracedoc_loop {
	pid_t pid, tid;
	pid_t ns_tid;			/* as the target sees it; 0: the host's id or unknown */
	uint64_t slow[3];		/* enum severity_level */
	struct json_object *stats;	/* from the BPF statistics, NULL if none */
};

struct tracedoc_top {
	char *entry_point;
	uint64_t count;
	double total_ms, max_ms;
	enum severity_level highest;
};

struct tracedoc {
	uint64_t origin_ns;		/* CLOCK_MONOTONIC of the timeline's zero */
	struct json_object *reports;	/* SPEC section 3 objects */
	struct json_object *timeline;	/* Trace Event Format events */
	struct json_object *processes;	/* what was traced, for the metadata */
	struct tracedoc_loop loops[TRACEDOC_MAX_LOOPS];
	size_t n_loops;
	struct tracedoc_top *top;
	size_t n_top;
	uint64_t lost_ring_buffer;	/* BPF could not reserve a record */
	uint64_t lost_per_callback;	/* records over the per-callback limit */
	uint64_t lost_document;		/* reports or entry points over the document's limits */
	uint64_t lost_slices;		/* timeline slices over its limit (chrome only) */
	size_t n_slices;
};

int tracedoc_init(struct tracedoc *d, uint64_t origin_ns);
void tracedoc_free(struct tracedoc *d);

/* A process traced: its pid, command line and interpreter go into the metadata. */
void tracedoc_add_process(struct tracedoc *d, const struct py_target *t);
void tracedoc_add_report(struct tracedoc *d, const struct report *r);
void tracedoc_add_iteration(struct tracedoc *d, const struct event_iteration *ev);
void tracedoc_add_loop_stats(struct tracedoc *d, pid_t tid, const struct loop_stats *s);

/* At the end: what was lost (LOST_RING_BUFFER, LOST_CALLBACK_CAP); stats come through the sink. */
void tracedoc_set_lost(struct tracedoc *d, uint64_t ring_buffer, uint64_t per_callback);
/* The engine sink that fills d: processes, reports, slow iterations, loop statistics. */
struct engine_sink tracedoc_sink(struct tracedoc *d);

/* Busy time below which a fraction p (0..1) of the iterations fall, from the histogram. */
uint64_t loop_stats_percentile_ns(const struct loop_stats *s, double p);
/* Lower and upper bound (ns) of a histogram bucket. */
void loop_hist_bounds(unsigned bucket, uint64_t *lo, uint64_t *hi);

/* metadata: version, host, kernel, options, start and end (wall-clock seconds), and why. */
struct json_object *tracedoc_metadata(const struct engine_options *opt, double duration_s,
				      enum tracedoc_format format, double start, double end,
				      const char *end_reason);

/*
 * The finished document (the caller owns it). metadata is taken over; it gets the
 * processes, and the document its loops, reports in time order, top and lost.
 */
struct json_object *tracedoc_build(struct tracedoc *d, struct json_object *metadata,
				   enum tracedoc_format format);

/* Writes a JSON value to path through a temporary file and a rename. */
int tracedoc_write_atomic(struct json_object *doc, const char *tmp_path, int tmp_fd,
			  const char *path);
/* Creates the temporary file next to path now, so an unwritable path (or a directory)
 * fails early: unnamed (O_TMPFILE) where the file system allows, so that nothing is left
 * beside path if aiocopd dies; tmp_path is then "". Returns its fd or -errno. */
int tracedoc_open_tmp(const char *path, char *tmp_path, size_t tmp_size);

#endif
