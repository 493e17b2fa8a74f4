// SPDX-License-Identifier: GPL-2.0
/*
 * The engine (see engine.h): the registry of watched processes and their loop threads,
 * arming and disarming, the ring buffer's dispatch, and the end of everything a process or
 * thread brought. Records are turned into reports by reconstruct.c; the records waiting for
 * their callback's end are kept by records.c.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "array.h"
#include "engine.h"
#include "probes.h"
#include "proc_facts.h"
#include "procmem.h"
#include "pyresolve.h"
#include "reconstruct.h"
#include "records.h"
#include "syscall_table.h"

#define MAX_SEEDED_THREADS	4096	/* threads of one process looked at when attaching */

/* A loop thread of a watched process. */
struct loop_thread {
	pid_t tid;
	pid_t ns_tid;			/* as the target sees it; 0: the host's id */
};

struct watched_private {
	struct pyresolver *resolver;
	struct target_links links;
	uint64_t last_slow_ns;		/* last report, for disarming an idle target */
	bool uvloop;			/* it maps uvloop (once seen, for good) */
	struct engine *engine;
	bool announced;			/* loop threads found from now on are told to sinks */
	bool lazy;			/* ENGINE_WATCH_LAZY: no uprobes until its first loop */
	bool arm_failed;		/* once: it stays per loop iteration, said once */
	sd_event_source *exit_source;	/* its pidfd: the exit is seen even if BPF's record was lost */
	struct loop_thread *loops;
	size_t n_loops, cap_loops;
};

struct engine {
	struct engine_options opt;
	struct probes probes;
	sd_event *loop;
	sd_event_source *ring_source, *drain_timer;
	engine_log_fn log;
	void *log_ctx;
	struct engine_sink *sinks;
	size_t n_sinks, cap_sinks;
	struct engine_follow_hooks follow;
	struct watched **procs;		/* every process watched, in no order */
	size_t n_procs, cap_procs;
	struct record_buffer *records;
	uint64_t reports;
	uint64_t reports_unnamed;	/* no frame could be read: counted as a loss */
	bool consuming;			/* inside a ring-buffer record's handler */
};

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t engine_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/*
 * The system clock's reading for a monotonic time, by the clocks' difference as it is now,
 * not as it was at start: a step of the system clock (NTP, a VM resumed) moves the times of
 * what is reported after it, as it moves the target's own clock.
 */
double engine_wall_time(const struct engine *e, uint64_t mono_ns)
{
	int64_t offset = (int64_t)(clock_ns(CLOCK_REALTIME) - engine_now_ns());

	return ((int64_t)mono_ns + offset) / 1e9;
}

void engine_log(struct engine *e, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!e->log || (level == LOG_INFO && e->opt.verbose < 1) ||
	    (level >= LOG_DEBUG && e->opt.verbose < 2))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e->log(e->log_ctx, level, msg);
}

/* ---- sinks ------------------------------------------------------------------------------ */

int engine_add_sink(struct engine *e, const struct engine_sink *sink)
{
	struct engine_sink *grown = array_room_for(e->sinks, &e->cap_sinks, e->n_sinks,
						   sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	e->sinks = grown;
	e->sinks[e->n_sinks++] = *sink;
	return 0;
}

static void tell_process(struct engine *e, const struct watched *w, enum process_change c)
{
	for (size_t i = 0; i < e->n_sinks; i++)
		if (e->sinks[i].process)
			e->sinks[i].process(e->sinks[i].ctx, w, c);
}

static void tell_report(struct engine *e, const struct watched *w, const struct report *r)
{
	e->reports++;
	for (size_t i = 0; i < e->n_sinks; i++)
		if (e->sinks[i].report)
			e->sinks[i].report(e->sinks[i].ctx, w, r);
}

static void tell_loop_stats(struct engine *e, const struct watched *w, pid_t tid,
			    const struct loop_stats *s)
{
	pid_t ns_tid = engine_loop_ns_tid(w, tid);

	for (size_t i = 0; i < e->n_sinks; i++)
		if (e->sinks[i].loop_stats)
			e->sinks[i].loop_stats(e->sinks[i].ctx, w, tid, ns_tid, s);
}

/* ---- arming ----------------------------------------------------------------------------- */

static double threshold_of(const struct engine *e, const struct watched *w)
{
	return w && w->threshold_ms > 0 ? w->threshold_ms : e->opt.threshold_ms;
}

static struct target_cfg target_cfg_of(const struct engine *e, const struct watched *w,
				       bool armed)
{
	struct target_cfg cfg = {};

	cfg.runtime_addr = w->target.runtime_addr;
	cfg.threshold_ns = (uint64_t)(threshold_of(e, w) * 1e6);
	cfg.sample_after_ns = cfg.threshold_ns / 2;
	cfg.flags = (e->opt.report_all ? TARGET_REPORT_ALL : 0) | (armed ? TARGET_ARMED : 0) |
		    (e->opt.stats ? TARGET_STATS : 0);
	cfg.trace_depth = e->opt.trace_depth;
	cfg.layout = w->target.layout->bpf;
	return cfg;
}

/* Fast callbacks cannot show themselves in iteration times: --all probes from the start. */
static bool armed_always(const struct engine *e)
{
	return e->opt.report_all || e->opt.armed_from_start;
}

static void arm(struct engine *e, struct watched *w)
{
	char err[256];

	if (w->armed || w->priv->arm_failed)
		return;
	if (probes_arm(&e->probes, &w->target, &w->priv->links, err, sizeof(err))) {
		w->priv->arm_failed = true;
		/* a process that just exited has its exit record on the way: nothing to say */
		if (proc_alive(w->pid))
			engine_log(e, LOG_WARNING, "%s; reports stay per loop iteration", err);
		return;
	}
	w->armed = true;
	engine_log(e, LOG_INFO, "slow iteration in PID %d: probing its callbacks one by one",
		   w->pid);
}

/* A target quiet for a while goes back to costing nothing per callback. */
static void maybe_disarm(struct engine *e, struct watched *w, uint64_t now)
{
	if (!w->armed || armed_always(e) ||
	    now - w->priv->last_slow_ns < ENGINE_DISARM_AFTER_S * 1000000000ull)
		return;
	probes_disarm(&e->probes, &w->target, &w->priv->links);
	w->armed = false;
	engine_log(e, LOG_INFO, "PID %d quiet for %d s: callback probes detached", w->pid,
		   ENGINE_DISARM_AFTER_S);
}

int engine_reconfigure(struct engine *e, const struct engine_options *opt)
{
	int ret = 0;

	e->opt = *opt;
	probes_set_sample_period(&e->probes, opt->threshold_ms);
	for (size_t i = 0; i < e->n_procs; i++) {
		struct watched *w = e->procs[i];
		struct target_cfg cfg;

		if (armed_always(e))
			arm(e, w);
		cfg = target_cfg_of(e, w, w->armed);
		if (probes_update_target(&e->probes, w->pid, &cfg))
			ret = -errno;
	}
	return ret;
}

const struct engine_options *engine_options(const struct engine *e)
{
	return &e->opt;
}

int engine_set_threshold(struct engine *e, struct watched *w, double threshold_ms)
{
	struct target_cfg cfg;

	w->threshold_ms = threshold_ms;
	cfg = target_cfg_of(e, w, w->armed);
	return probes_update_target(&e->probes, w->pid, &cfg) ? -errno : 0;
}

void engine_read_loop_stats(struct engine *e, const struct watched *w,
			    void (*fn)(void *ctx, pid_t tid, const struct loop_stats *s),
			    void *ctx)
{
	struct loop_stats s;

	for (size_t k = 0; k < w->priv->n_loops; k++)
		if (probes_read_loop_stats(&e->probes, w->priv->loops[k].tid, &s) == 0)
			fn(ctx, w->priv->loops[k].tid, &s);
}

/* ---- the registry ----------------------------------------------------------------------- */

struct watched *engine_find(struct engine *e, pid_t pid)
{
	for (size_t i = 0; i < e->n_procs; i++)
		if (e->procs[i]->pid == pid)
			return e->procs[i];
	return NULL;
}

static struct loop_thread *find_loop(struct watched *w, pid_t tid)
{
	for (size_t i = 0; i < w->priv->n_loops; i++)
		if (w->priv->loops[i].tid == tid)
			return &w->priv->loops[i];
	return NULL;
}

/* The statistics of a loop thread, handed to the sinks and taken out of BPF's map. */
static void collect_loop_stats(struct engine *e, struct watched *w, pid_t tid)
{
	struct loop_stats s;

	if (e->opt.stats && probes_take_loop_stats(&e->probes, tid, &s) == 0)
		tell_loop_stats(e, w, tid, &s);
}

static void drop_loop(struct engine *e, struct watched *w, struct loop_thread *l)
{
	collect_loop_stats(e, w, l->tid);
	records_forget_thread(e->records, w->pid, l->tid);
	/* the thread may live on (its process exec'd): its BPF state must not */
	probes_forget_thread(&e->probes, l->tid);
	*l = w->priv->loops[--w->priv->n_loops];
}

/* A loop thread is counted and sampled once, whether we found it or BPF did. */
static void note_loop_thread(struct engine *e, struct watched *w, pid_t tid)
{
	struct watched_private *p = w->priv;
	struct loop_thread *l;

	if (find_loop(w, tid))
		return;
	l = array_room_for(p->loops, &p->cap_loops, p->n_loops, sizeof(*l));
	if (!l)
		return;
	p->loops = l;
	l = &p->loops[p->n_loops++];
	/* read while the thread is surely there: its reports come after it may be gone */
	*l = (struct loop_thread){ .tid = tid, .ns_tid = w->target.place.own_pid_ns ?
							 target_ns_tid(w->pid, tid) : 0 };
	probes_add_loop_thread(&e->probes, w->pid, tid, e->opt.stats);
	w->loop_threads++;
	if (p->lazy) {
		/* a fork that runs a loop of its own after all: now its probes are worth it */
		p->lazy = false;
		probes_attach_always(&e->probes, &w->target, &p->links, !e->opt.no_exit_hold);
		if (armed_always(e))
			arm(e, w);
	}
	if (!p->announced)
		return;
	for (size_t i = 0; i < e->n_sinks; i++)
		if (e->sinks[i].loop_thread)
			e->sinks[i].loop_thread(e->sinks[i].ctx, w, tid);
}

static int add_to_registry(struct engine *e, struct watched *w)
{
	struct watched **grown = array_room_for(e->procs, &e->cap_procs, e->n_procs,
						sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	e->procs = grown;
	e->procs[e->n_procs++] = w;
	return 0;
}

static void remove_from_registry(struct engine *e, struct watched *w)
{
	for (size_t i = 0; i < e->n_procs; i++)
		if (e->procs[i] == w) {
			e->procs[i] = e->procs[--e->n_procs];
			return;
		}
}

static void free_watched(struct watched *w)
{
	if (!w)
		return;
	if (w->priv) {
		sd_event_source_disable_unref(w->priv->exit_source);
		pyresolver_free(w->priv->resolver);
		free(w->priv->loops);
	}
	free(w->priv);
	free(w);
}

/* Takes a process out: what it brought goes, in BPF and here. */
static void retire(struct engine *e, struct watched *w, enum process_change why)
{
	while (w->priv->n_loops)
		drop_loop(e, w, &w->priv->loops[0]);
	tell_process(e, w, why);
	probes_remove_target(&e->probes, w->pid, &w->priv->links);
	records_forget_process(e->records, w->pid);
	remove_from_registry(e, w);
	free_watched(w);
}

void engine_unwatch(struct engine *e, struct watched *w)
{
	retire(e, w, PROCESS_UNWATCHED);
}

/* ---- records ---------------------------------------------------------------------------- */

static void resolver_locate(void *ctx, uint64_t code, uint64_t instr, struct py_location *loc)
{
	struct watched *w = ctx;

	pyresolver_locate(w->priv->resolver, code, instr, loc);
}

static int resolver_read_u64(void *ctx, uint64_t addr, uint64_t *val)
{
	struct watched *w = ctx;

	return procmem_read_u64(w->pid, addr, val);
}

static int resolver_read_str(void *ctx, uint64_t obj, char *buf, size_t bufsz)
{
	struct watched *w = ctx;

	return pyresolver_read_str(w->pid, w->target.layout, obj, buf, bufsz);
}

/*
 * uvloop's callbacks never show Handle._run: its maps are read only when that matters, and
 * again while it is not there (it may be imported later).
 */
static bool resolver_uses_uvloop(void *ctx)
{
	struct watched *w = ctx;

	if (!w->priv->uvloop)
		w->priv->uvloop = target_maps_file(w->pid, "/uvloop/loop.");
	return w->priv->uvloop;
}

/* How reconstruction sees the target w (NULL: not watched, nothing to read). */
static struct recon_resolver resolver_of(struct watched *w)
{
	return (struct recon_resolver){
		.locate = resolver_locate, .read_u64 = resolver_read_u64,
		.read_str = resolver_read_str, .uses_uvloop = resolver_uses_uvloop,
		.ctx = w, .layout = w ? w->target.layout : NULL,
	};
}

static struct recon_options recon_options_of(const struct engine *e, const struct watched *w)
{
	struct recon_options opt = { .threshold_ms = threshold_of(e, w),
				     .trace_depth = e->opt.trace_depth,
				     .n_app_paths = e->opt.n_app_paths };

	memcpy(opt.app_paths, e->opt.app_paths, sizeof(opt.app_paths));
	return opt;
}

/* What reconstruction leaves to the engine: the wall-clock time and the target's own ids. */
static void place_report(struct engine *e, struct watched *w, struct report *r)
{
	r->ts = engine_wall_time(e, r->start_ns);
	r->ns_pid = w->target.place.ns_pid;
	r->ns_tid = engine_loop_ns_tid(w, r->tid);
}

static int build_report(struct engine *e, struct watched *w, const struct event_callback *ev,
			const struct record_set *set, struct report *out)
{
	const struct recon_resolver res = resolver_of(w);
	const struct recon_options opt = recon_options_of(e, w);
	int ret;

	ret = reconstruct_report(ev, set, &res, &opt, out);

	if (ret)
		return ret;
	place_report(e, w, out);
	return 0;
}

pid_t engine_loop_ns_tid(const struct watched *w, pid_t tid)
{
	struct loop_thread *l = find_loop((struct watched *)w, tid);

	if (l)
		return l->ns_tid;
	return w->target.place.own_pid_ns ? target_ns_tid(w->pid, tid) : 0;
}

static void on_loop_thread(struct engine *e, const struct event_loop_thread *ev)
{
	struct watched *w = engine_find(e, ev->h.pid);

	if (w)
		note_loop_thread(e, w, ev->h.tid);
}

/*
 * Every stack of the report is unknown: the process was gone (exited without finalizing,
 * so it was not held) or its memory unreadable by the time its records were read.
 */
static bool names_no_frame(const struct report *r)
{
	if (!r->n_events && !r->n_cpu)
		return false;
	for (size_t i = 0; i < r->n_events; i++)
		if (strncmp(r->events[i].entry_point, "?:", 2))
			return false;
	for (size_t i = 0; i < r->n_cpu; i++)
		if (strncmp(r->cpu[i].entry_point, "?:", 2))
			return false;
	return true;
}

static void report_part(struct engine *e, struct watched *w, const struct recon_part *part)
{
	struct report r;

	if (build_report(e, w, &part->cb, &part->set, &r) != 0)
		return;		/* not a loop callback after all */
	if (names_no_frame(&r))
		e->reports_unnamed++;
	tell_report(e, w, &r);
	report_free(&r);
}

/* A slow iteration with no callback to blame alone: one slow_iteration report. */
static void report_lag(struct engine *e, struct watched *w, const struct event_callback *ev,
		       const struct recon_part *parts, size_t n)
{
	const struct recon_resolver res = resolver_of(w);
	const struct recon_options opt = recon_options_of(e, w);
	struct report r;

	if (reconstruct_slow_iteration(ev, parts, n, &res, &opt, &r))
		return;
	place_report(e, w, &r);
	tell_report(e, w, &r);
	report_free(&r);
}

/* A slow callback, or (unarmed) a slow iteration: one report per callback that its stacks show. */
static void on_callback(struct engine *e, const struct event_callback *ev)
{
	struct watched *w = engine_find(e, ev->h.pid);
	struct record_set set = records_take(e->records, ev);
	const struct recon_resolver res = resolver_of(w);
	const struct recon_options opt = recon_options_of(e, w);
	struct recon_part *parts = NULL;
	size_t n_parts = 0;
	bool lag;

	if (!w)
		goto out;
	w->priv->last_slow_ns = engine_now_ns();
	if (reconstruct_split_iteration(ev, &set, &res, &opt, &parts, &n_parts, &lag))
		goto out;
	if (lag)
		report_lag(e, w, ev, parts, n_parts);
	for (size_t i = 0; !lag && i < n_parts; i++)
		report_part(e, w, &parts[i]);
	if (ev->scope == SCOPE_ITERATION)
		arm(e, w);
out:
	recon_parts_free(parts, n_parts);
	record_set_free(&set);
}

/* A slow iteration: the timeline's (stats), and, armed, the loop's lag when BPF says so. */
static void on_iteration(struct engine *e, const struct event_iteration *ev)
{
	struct watched *w = engine_find(e, ev->h.pid);
	const struct recon_resolver res = resolver_of(w);
	const struct recon_options opt = recon_options_of(e, w);
	struct report r;

	if (!w)
		return;
	if (ev->lag && reconstruct_lag_iteration(ev, &res, &opt, &r) == 0) {
		w->priv->last_slow_ns = engine_now_ns();
		place_report(e, w, &r);
		tell_report(e, w, &r);
		report_free(&r);
	}
	for (size_t i = 0; e->opt.stats && i < e->n_sinks; i++)
		if (e->sinks[i].iteration)
			e->sinks[i].iteration(e->sinks[i].ctx, w, ev);
}

static void on_thread_exit(struct engine *e, const struct event_header *h)
{
	struct watched *w = engine_find(e, h->pid);
	struct loop_thread *l = w ? find_loop(w, h->tid) : NULL;

	struct loop_stats s;

	if (l) {
		drop_loop(e, w, l);
		return;
	}
	records_forget_thread(e->records, h->pid, h->tid);
	/* a loop thread we never heard of (its record was lost): its statistics go all the same */
	if (probes_take_loop_stats(&e->probes, h->tid, &s) == 0 && w)
		tell_loop_stats(e, w, h->tid, &s);
}

static void on_process_exit(struct engine *e, pid_t pid)
{
	struct watched *w = engine_find(e, pid);

	if (e->follow.exit)
		e->follow.exit(e->follow.ctx, pid);
	if (w)
		retire(e, w, PROCESS_EXITED);
	else
		records_forget_process(e->records, pid);
}

/*
 * A watched process began to finalize, held by BPF. The ring is in order, so everything it
 * recorded before has been handled, its reports named from its memory: it may go on.
 */
static void on_finalize(struct engine *e, pid_t pid)
{
	engine_log(e, LOG_DEBUG, "PID %d finalizes: its last reports are out", pid);
	probes_continue(&e->probes, pid);
}

static void on_process(struct engine *e, const struct event_process *ev)
{
	const struct engine_follow_hooks *f = &e->follow;

	switch (ev->h.type) {
	case EVENT_EXEC:
		if (f->exec)
			f->exec(f->ctx, ev->h.pid, ev->h.ts_ns);
		break;
	case EVENT_ENTRY:
		if (f->entry)
			f->entry(f->ctx, ev->h.pid);
		break;
	case EVENT_FORK:
		if (f->fork)
			f->fork(f->ctx, ev->h.pid, ev->parent);
		break;
	case EVENT_EXIT:
		on_process_exit(e, ev->h.pid);
		break;
	case EVENT_FINALIZE:
		on_finalize(e, ev->h.pid);
		break;
	case EVENT_EXEC_SEEN:
		if (f->exec_seen)
			f->exec_seen(f->ctx, ev->h.pid, ev->h.ts_ns);
		break;
	}
}

static void handle_record(struct engine *e, const struct event_header *h, void *data,
			  size_t size)
{
	switch (h->type) {
	case EVENT_LOOP_THREAD:
		if (size >= sizeof(struct event_loop_thread))
			on_loop_thread(e, data);
		break;
	case EVENT_BLOCKING:
		/* records of a process we do not watch (any more) would only wait to be freed */
		if (size >= sizeof(struct event_blocking) && engine_find(e, h->pid))
			records_add(e->records, data);
		break;
	case EVENT_CALLBACK:
		if (size >= sizeof(struct event_callback))
			on_callback(e, data);
		break;
	case EVENT_ITERATION:
		if (size >= sizeof(struct event_iteration))
			on_iteration(e, data);
		break;
	case EVENT_THREAD_EXIT:
		on_thread_exit(e, h);
		break;
	case EVENT_EXEC:
	case EVENT_ENTRY:
	case EVENT_FORK:
	case EVENT_EXIT:
	case EVENT_FINALIZE:
	case EVENT_EXEC_SEEN:
		if (size >= sizeof(struct event_process))
			on_process(e, data);
		break;
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct engine *e = ctx;
	const struct event_header *h = data;

	if (size < sizeof(*h))
		return 0;
	e->consuming = true;
	handle_record(e, h, data, size);
	e->consuming = false;
	return 0;
}

void engine_drain(struct engine *e)
{
	uint64_t now;

	probes_consume(&e->probes);
	now = engine_now_ns();		/* after the reports: none may be newer than now */
	for (size_t i = 0; i < e->n_procs; i++)
		maybe_disarm(e, e->procs[i], now);
}

static int on_ring_readable(sd_event_source *s, int fd, uint32_t revents, void *ctx)
{
	engine_drain(ctx);
	return 0;
}

static int on_drain_timer(sd_event_source *s, uint64_t usec, void *ctx)
{
	engine_drain(ctx);
	return sd_event_source_set_time_relative(s, ENGINE_DRAIN_INTERVAL_MS * 1000);
}

void engine_flush_stats(struct engine *e)
{
	for (size_t i = 0; i < e->n_procs; i++)
		for (size_t k = 0; k < e->procs[i]->priv->n_loops; k++)
			collect_loop_stats(e, e->procs[i], e->procs[i]->priv->loops[k].tid);
}

/* ---- attach ----------------------------------------------------------------------------- */

static bool waiting_in_epoll(pid_t pid, const char *tid)
{
	char path[320], buf[256];
	long nr;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall", pid, tid);
	if (proc_read_file(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%ld", &nr) != 1)
		return false;
	return syscall_info(nr) && syscall_info(nr)->kind == SYSCALL_LOOP_WAIT;
}

/* Loop threads idle in epoll_wait right now: register them so their next callback counts. */
static void seed_loop_threads(struct engine *e, struct watched *w)
{
	struct dirent *d;
	char path[64];
	int seen = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", w->pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir)) && seen++ < MAX_SEEDED_THREADS) {
		pid_t tid = atoi(d->d_name);

		if (tid > 0 && waiting_in_epoll(w->pid, d->d_name))
			note_loop_thread(e, w, tid);
	}
	closedir(dir);
}

/* The arguments joined by spaces, cut to fit. */
static void read_cmdline(pid_t pid, char *buf, size_t bufsz)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	n = proc_read_file(path, buf, bufsz);
	if (n <= 0) {
		snprintf(buf, bufsz, "?");
		return;
	}
	for (ssize_t i = 0; i < n - 1; i++)
		if (!buf[i])
			buf[i] = ' ';
}

static struct watched *new_watched(struct engine *e, const struct py_target *t)
{
	struct watched *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->priv = calloc(1, sizeof(*w->priv));
	if (!w->priv)
		goto fail;
	w->priv->engine = e;
	w->pid = t->pid;
	w->target = *t;
	w->target.layout = &w->target.layout_copy;
	read_cmdline(t->pid, w->cmdline, sizeof(w->cmdline));
	w->priv->resolver = pyresolver_new(t->pid, w->target.layout);
	if (!w->priv->resolver)
		goto fail;
	return w;
fail:
	free_watched(w);
	return NULL;
}

/*
 * A watched process ended (its pidfd is readable). BPF's exit record usually came first;
 * this catches the exit when that record was lost, or when the process ended before BPF
 * knew it (while we attached).
 */
static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *ctx)
{
	struct watched *w = ctx, *now;
	struct engine *e = w->priv->engine;
	pid_t pid = w->pid;

	probes_consume(&e->probes);	/* its last records are in the ring before its exit */
	now = engine_find(e, pid);	/* (w may be gone: that record retired it) */
	if (now && now->priv->exit_source == s)
		on_process_exit(e, pid);
	return 0;
}

static int pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

/* Returns 0, or -ESRCH when the process is already gone. */
static int watch_exit(struct engine *e, struct watched *w)
{
	int fd = pidfd_open(w->pid), ret;

	if (fd < 0)
		return -errno;
	ret = sd_event_add_io(e->loop, &w->priv->exit_source, fd, EPOLLIN, on_pidfd, w);
	if (ret < 0) {
		close(fd);
		return ret;
	}
	return sd_event_source_set_io_fd_own(w->priv->exit_source, 1);
}

struct watched *engine_watch(struct engine *e, const struct py_target *t, unsigned flags,
			     char *err, size_t errsz)
{
	bool lazy = flags & ENGINE_WATCH_LAZY, armed = armed_always(e) && !lazy;
	struct target_cfg cfg;
	struct watched *w;

	w = engine_find(e, t->pid);
	if (w)
		engine_unwatch(e, w);	/* the same pid with a new program (exec) */
	w = new_watched(e, t);
	if (!w || add_to_registry(e, w)) {
		snprintf(err, errsz, "out of memory");
		free_watched(w);
		return NULL;
	}
	if (watch_exit(e, w)) {
		snprintf(err, errsz, "PID %d exited while attaching", t->pid);
		goto fail;
	}
	/* armed from the start: no iteration may be timed as a whole before the uprobes */
	cfg = target_cfg_of(e, w, armed);
	if (probes_add_target(&e->probes, &w->target, &cfg, &w->priv->links, err, errsz))
		goto fail;
	w->priv->lazy = lazy;
	if (!lazy)
		probes_attach_always(&e->probes, &w->target, &w->priv->links,
				     !e->opt.no_exit_hold);
	if (armed) {
		err[0] = 0;
		if (probes_arm(&e->probes, &w->target, &w->priv->links, err, errsz)) {
			if (!err[0])	/* its map entry went: it exec'd or exited meanwhile */
				snprintf(err, errsz, "PID %d exec'd or exited while attaching",
					 t->pid);
			goto fail;
		}
		w->armed = true;
	}
	tell_process(e, w, PROCESS_WATCHED);
	seed_loop_threads(e, w);
	/* loop threads found by BPF while we attached; not from inside a record's handler */
	if (!e->consuming)
		probes_consume(&e->probes);
	w = engine_find(e, t->pid);	/* (it may have exited meanwhile) */
	if (w)
		w->priv->announced = true;
	return w;
fail:
	remove_from_registry(e, w);
	probes_remove_target(&e->probes, t->pid, &w->priv->links);
	free_watched(w);
	return NULL;
}

struct watched *engine_watch_fork(struct engine *e, const struct watched *parent, pid_t child,
				  char *err, size_t errsz)
{
	struct py_target t = parent->target;

	t.pid = child;
	t.layout = &t.layout_copy;
	/* a parent that unshared its PID namespace has children in the new one */
	target_place_read(child, &t.place);
	return engine_watch(e, &t, ENGINE_WATCH_LAZY, err, errsz);
}

/* ---- the engine ------------------------------------------------------------------------- */

static int add_event_sources(struct engine *e, sd_event *loop)
{
	int ret;

	e->loop = sd_event_ref(loop);
	/* woken by reports and process events at once; the rest waits for the timer */
	ret = sd_event_add_io(loop, &e->ring_source, probes_ring_fd(&e->probes), EPOLLIN,
			      on_ring_readable, e);
	if (ret < 0)
		return ret;
	ret = sd_event_add_time_relative(loop, &e->drain_timer, CLOCK_MONOTONIC,
					 ENGINE_DRAIN_INTERVAL_MS * 1000, 10000, on_drain_timer, e);
	if (ret < 0)
		return ret;
	return sd_event_source_set_enabled(e->drain_timer, SD_EVENT_ON);
}

int engine_open(struct engine **out, const struct engine_options *opt, sd_event *loop,
		engine_log_fn log, void *log_ctx, char *err, size_t errsz)
{
	struct engine *e = calloc(1, sizeof(*e));
	int ret;

	*out = NULL;
	if (!e) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	e->opt = *opt;
	e->log = log;
	e->log_ctx = log_ctx;
	e->records = records_new();
	if (!e->records) {
		snprintf(err, errsz, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	ret = probes_open(&e->probes, on_record, e, err, errsz);
	if (ret)
		goto fail;
	probes_set_sample_period(&e->probes, opt->threshold_ms);
	ret = add_event_sources(e, loop);
	if (ret < 0) {
		snprintf(err, errsz, "cannot watch the ring buffer: %s", strerror(-ret));
		goto fail;
	}
	*out = e;
	return 0;
fail:
	engine_close(e);
	return ret;
}

void engine_close(struct engine *e)
{
	if (!e)
		return;
	/* uprobes trap in their targets even when their program does nothing: off first */
	while (e->n_procs)
		engine_unwatch(e, e->procs[0]);
	sd_event_source_disable_unref(e->ring_source);
	sd_event_source_disable_unref(e->drain_timer);
	sd_event_unref(e->loop);
	probes_close(&e->probes);
	records_free(e->records);
	free(e->procs);
	free(e->sinks);
	free(e);
}

void engine_set_follow_hooks(struct engine *e, const struct engine_follow_hooks *hooks)
{
	e->follow = hooks ? *hooks : (struct engine_follow_hooks){ 0 };
}

struct probes *engine_probes(struct engine *e)
{
	return &e->probes;
}

uint64_t engine_lost(const struct engine *e, unsigned kind)
{
	struct records_stats st;

	if (kind != LOST_CALLBACK_CAP)
		return probes_lost(&e->probes, kind);
	records_stats(e->records, &st);
	return probes_lost(&e->probes, kind) + st.dropped;
}

uint64_t engine_reports(const struct engine *e)
{
	return e->reports;
}

uint64_t engine_reports_unnamed(const struct engine *e)
{
	return e->reports_unnamed;
}

int engine_tracepoints_missing(const struct engine *e)
{
	return e->probes.tracepoints_missing;
}

const char *engine_gc_source(const struct watched *w)
{
	return w->priv->links.gc_source;
}
