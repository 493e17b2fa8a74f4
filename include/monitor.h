/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The monitor: the processes watched and their probes, and the loop that drains the ring
 * buffer, keeping blocking records until the callback record that closes them turns them
 * into a report.
 */
#ifndef AIOCOPD_MONITOR_H
#define AIOCOPD_MONITOR_H

#include <stdbool.h>
#include <stdio.h>

#include "probes.h"
#include "pyresolve.h"
#include "records.h"
#include "report.h"
#include "summary.h"
#include "target.h"

#define MONITOR_MAX_PROCS	1024	/* processes watched (exec follows many) */
#define MONITOR_DISARM_AFTER_S	60	/* quiet seconds before per-callback probes come off */

struct monitor_options {
	double threshold_ms;
	unsigned trace_depth;
	bool report_all;
	bool json;
	double duration_s;		/* 0: until stopped */
	bool verbose;
	bool armed_from_start;		/* trace, exec: every callback probed from the start */
	bool stats;			/* trace, exec: loop statistics and slow iterations */
};

/* A process being watched. */
struct watched {
	struct py_target target;
	struct pyresolver *resolver;
	struct target_links links;
	bool armed;			/* per-callback probes attached */
	bool uvloop;			/* the target has loaded uvloop */
	char cmdline[160];		/* as /proc showed it when we attached */
	bool exited;			/* gone: its probes are off, its summary stays */
	uint64_t last_slow_ns;		/* last report, for disarming an idle target */
	struct proc_summary summary;	/* exec's, kept by its report hook */
};

struct loop_thread {
	pid_t pid, tid;
};

enum monitor_stop {
	STOP_SIGNAL = 0,
	STOP_DURATION,
	STOP_TARGET_EXIT,
};

struct monitor {
	const struct monitor_options *opt;
	struct probes probes;
	struct watched *procs[MONITOR_MAX_PROCS];
	size_t n_procs;
	struct record_buffer *records;	/* of the current callbacks, and fd names */
	struct loop_thread *loop_tids;	/* counted and sampled, of processes alive */
	size_t loop_threads;
	int64_t realtime_offset_ns;	/* CLOCK_REALTIME - CLOCK_MONOTONIC */
	bool attached;
	bool consuming;			/* inside a ring-buffer record's handler */
	uint64_t reports;
	/* hooks: default rendering is text or JSON lines on out */
	void (*on_report)(struct monitor *m, struct watched *w, const struct report *r);
	void (*on_iteration)(struct monitor *m, const struct event_iteration *ev);
	void (*on_process)(struct monitor *m, const struct event_process *ev);
	void (*on_tick)(struct monitor *m, uint64_t now_ns);
	void *user;
	FILE *out;
};

/* Loads the BPF object and attaches what is system-wide; prints nothing. */
int monitor_open(struct monitor *m, const struct monitor_options *opt, char *err, size_t errsz);
/* Starts watching a CPython process (t is copied); prints nothing. */
struct watched *monitor_add(struct monitor *m, const struct py_target *t, char *err,
			    size_t errsz);
struct watched *monitor_find(struct monitor *m, pid_t pid);
/* A watched process exec'd or exited: drop what belonged to it. */
void monitor_forget(struct monitor *m, struct watched *w);
/* Takes the probes off processes that have exited, keeping what they reported. */
void monitor_retire_exited(struct monitor *m);
/* Runs until a signal, the duration, or the first target's exit. */
enum monitor_stop monitor_run(struct monitor *m);
/* One pass: reads the ring buffer, disarms idle targets. */
void monitor_drain(struct monitor *m);
uint64_t monitor_now_ns(void);
/* Wall-clock seconds of a CLOCK_MONOTONIC timestamp. */
double monitor_wall_time(const struct monitor *m, uint64_t mono_ns);
void monitor_close(struct monitor *m);
/* Builds the report for a callback record from the records kept for it (exposed for tests). */
int monitor_build_report(struct monitor *m, struct watched *w, const struct event_callback *ev,
			 struct report *out);

#endif
