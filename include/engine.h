/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The engine every command drives: one BPF object, the CPython processes it watches, and
 * the reports made of what their loops did. It installs no signal handler and prints
 * nothing. It runs on an sd-event loop that the command owns, says what happens through a
 * log callback (syslog levels), and hands every report, slow iteration, loop statistic and
 * process change to its sinks. Everything a process brings is freed when it exits.
 */
#ifndef AIOCOPD_ENGINE_H
#define AIOCOPD_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "aiocopd.h"
#include "reconstruct.h"
#include "report.h"
#include "target.h"

#define ENGINE_DRAIN_INTERVAL_MS	100
#define ENGINE_DISARM_AFTER_S		60	/* quiet seconds before callback probes come off */

struct engine;

struct engine_options {
	double threshold_ms;
	unsigned trace_depth;
	/* --app-path: prefixes of the application's files, for entry points (reconstruct.h) */
	const char *app_paths[RECON_MAX_APP_PATHS];
	unsigned n_app_paths;
	bool report_all;		/* --all: fast callbacks that blocked are reported too */
	bool armed_from_start;		/* trace, exec: every callback probed from the start */
	bool stats;			/* trace, exec: loop statistics and slow iterations */
	/*
	 * service: a process that finalizes is not held until its last reports are read (the
	 * service never stops a target, and may not be allowed to continue one)
	 */
	bool no_exit_hold;
	int verbose;			/* 1: log LOG_INFO messages too, 2: and LOG_DEBUG */
};

/* A process being watched: what sinks may read of it. */
struct watched {
	pid_t pid;
	struct py_target target;
	char cmdline[160];		/* as /proc showed it when we attached */
	double threshold_ms;		/* its own threshold; 0: the engine's */
	bool armed;			/* per-callback probes attached */
	size_t loop_threads;		/* loop threads seen so far */
	void *owner;			/* the command's own, never touched by the engine */
	struct watched_private *priv;	/* the engine's own state */
};

enum process_change {
	PROCESS_WATCHED,		/* attached: its reports follow */
	PROCESS_EXITED,			/* it exited: its state goes right after this call */
	PROCESS_UNWATCHED,		/* alive, no longer watched (it exec'd, or was let go) */
};

/*
 * Where reports go. Every member may be NULL. A sink is called while the engine walks its
 * registry: it may read what it is given and stop the event loop, but must not watch,
 * unwatch or add sinks from inside a call (defer that to the loop).
 */
struct engine_sink {
	void (*report)(void *ctx, const struct watched *w, const struct report *r);
	void (*iteration)(void *ctx, const struct watched *w, const struct event_iteration *ev);
	/*
	 * a loop thread's statistics (stats option), once when its process leaves the engine;
	 * ns_tid: the thread's id as the target sees it, 0 when that is the host's (tid)
	 */
	void (*loop_stats)(void *ctx, const struct watched *w, pid_t tid, pid_t ns_tid,
			   const struct loop_stats *s);
	void (*process)(void *ctx, const struct watched *w, enum process_change change);
	/* an event loop found running in thread tid after the process was watched */
	void (*loop_thread)(void *ctx, const struct watched *w, pid_t tid);
	void *ctx;
};

typedef void (*engine_log_fn)(void *ctx, int level, const char *msg);

/* What BPF tells of followed processes (see follow.h); every member may be NULL. */
struct engine_follow_hooks {
	void (*exec)(void *ctx, pid_t pid, uint64_t ts_ns);	/* exec'd, stopped by BPF */
	void (*entry)(void *ctx, pid_t pid);		/* at its entry point, stopped */
	void (*fork)(void *ctx, pid_t pid, pid_t parent);	/* a watched process forked */
	void (*exit)(void *ctx, pid_t pid);		/* a followed process exited */
	/* any process exec'd and runs on, not held (probes_discover_execs) */
	void (*exec_seen)(void *ctx, pid_t pid, uint64_t ts_ns);
	void *ctx;
};

/*
 * Loads the BPF object, attaches what is system-wide and registers the ring buffer and the
 * drain timer on loop. Returns 0, or a negative errno with a message in err.
 */
int engine_open(struct engine **out, const struct engine_options *opt, sd_event *loop,
		engine_log_fn log, void *log_ctx, char *err, size_t errsz);
void engine_close(struct engine *e);

int engine_add_sink(struct engine *e, const struct engine_sink *sink);

/*
 * A fork: its uprobes wait until it runs an event loop of its own, since most forks of a
 * Python process exec at once (subprocess) and a uprobe attached now would only have to come
 * off again before the new program may go on. Meanwhile it is watched per loop iteration.
 */
#define ENGINE_WATCH_LAZY	(1u << 0)

/* Starts watching a CPython process (t is copied); flags: ENGINE_WATCH_*. */
struct watched *engine_watch(struct engine *e, const struct py_target *t, unsigned flags,
			     char *err, size_t errsz);
/* Starts watching child, a fork of parent: the same interpreter at the same addresses. */
struct watched *engine_watch_fork(struct engine *e, const struct watched *parent, pid_t child,
				  char *err, size_t errsz);
struct watched *engine_find(struct engine *e, pid_t pid);
/* The id loop thread tid of w sees itself under, 0 when it is the host's or unknown. */
pid_t engine_loop_ns_tid(const struct watched *w, pid_t tid);
/* Stops watching a live process: its probes and state go, sinks hear PROCESS_UNWATCHED. */
void engine_unwatch(struct engine *e, struct watched *w);

/* New threshold, trace depth or arming for every watched process, nothing detached. */
int engine_reconfigure(struct engine *e, const struct engine_options *opt);
const struct engine_options *engine_options(const struct engine *e);
/* w's own threshold (0: the engine's), applied in place. */
int engine_set_threshold(struct engine *e, struct watched *w, double threshold_ms);
/* The statistics of w's loop threads as they stand now (stats option), left in place. */
void engine_read_loop_stats(struct engine *e, const struct watched *w,
			    void (*fn)(void *ctx, pid_t tid, const struct loop_stats *s),
			    void *ctx);

/* Reads what the ring buffer holds now (the drain timer does this by itself). */
void engine_drain(struct engine *e);
/* Hands the statistics of the loops still running to the sinks' loop_stats. */
void engine_flush_stats(struct engine *e);

/* Losses so far: records BPF could not keep, records over the per-callback limits. */
uint64_t engine_lost(const struct engine *e, unsigned kind);
uint64_t engine_reports(const struct engine *e);
/* Reports whose stacks name no frame (the process's memory was gone or unreadable). */
uint64_t engine_reports_unnamed(const struct engine *e);
/* Syscall tracepoints the kernel lacks; how collections of a process are timed. */
int engine_tracepoints_missing(const struct engine *e);
const char *engine_gc_source(const struct watched *w);

/* Process following: who hears of exec, fork and exit (NULL: nobody), and its probes. */
void engine_set_follow_hooks(struct engine *e, const struct engine_follow_hooks *hooks);
struct probes *engine_probes(struct engine *e);

/* Logging, for the modules the engine drives (process following). */
void engine_log(struct engine *e, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

uint64_t engine_now_ns(void);
/* Wall-clock seconds of a CLOCK_MONOTONIC timestamp. */
double engine_wall_time(const struct engine *e, uint64_t mono_ns);

#endif
