/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The live monitor: drains the ring buffer, keeps the blocking records of each loop thread's
 * current callback, and turns a finished callback into a report.
 */
#ifndef AIOCOPD_MONITOR_H
#define AIOCOPD_MONITOR_H

#include <stdbool.h>
#include <stdio.h>

#include "probes.h"
#include "pyresolve.h"
#include "report.h"
#include "target.h"

#define MONITOR_MAX_THREADS	256
#define MONITOR_MAX_PENDING	64	/* records kept per callback; the rest are counted */
#define MONITOR_FD_SLOTS	1024
#define MONITOR_DISARM_AFTER_S	60	/* quiet seconds before per-callback probes come off */

struct monitor_options {
	double threshold_ms;
	unsigned trace_depth;
	bool report_all;
	bool json;
	double duration_s;		/* 0: until stopped */
	bool verbose;
};

struct pending_callback {
	pid_t tid;
	bool loop_seen;			/* counted as a loop thread, sampler started */
	uint64_t cb_seq;
	size_t n;
	size_t dropped;
	struct event_blocking *records;	/* MONITOR_MAX_PENDING of them */
};

struct fd_name {
	int fd;
	char *path;
};

struct monitor {
	const struct monitor_options *opt;
	struct py_target *target;
	struct probes probes;
	struct pyresolver *resolver;
	struct pending_callback threads[MONITOR_MAX_THREADS];
	size_t n_threads;
	struct fd_name fds[MONITOR_FD_SLOTS];
	size_t loop_threads;
	int64_t realtime_offset_ns;	/* CLOCK_REALTIME - CLOCK_MONOTONIC */
	bool attached;
	bool armed;			/* per-callback probes attached */
	bool uvloop;			/* the target has loaded uvloop */
	uint64_t last_slow_ns;		/* last report, for disarming an idle target */
	uint64_t reports;
	void (*on_report)(struct monitor *m, const struct report *r);
	FILE *out;
};

/* Loads and attaches everything for the target; prints nothing. */
int monitor_attach(struct monitor *m, const struct monitor_options *opt, struct py_target *t,
		   char *err, size_t errsz);
/* Runs until a signal, the duration, or the target's exit. Returns 0 or -errno. */
int monitor_run(struct monitor *m);
void monitor_close(struct monitor *m);
/* Builds the report for a callback record from the records kept for it (exposed for tests). */
int monitor_build_report(struct monitor *m, const struct event_callback *ev,
			 struct report *out);

#endif
