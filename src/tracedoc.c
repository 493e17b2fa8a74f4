// SPDX-License-Identifier: GPL-2.0
/*
 * Trace documents: collects reports, slow iterations and loop statistics while tracing, and
 * builds either the trace JSON or the Trace Event Format timeline at the end. Every count
 * that could grow without bound has a limit, and what goes over it is counted in "lost".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "procmem.h"
#include "tracedoc.h"

int tracedoc_init(struct tracedoc *d, uint64_t origin_ns)
{
	memset(d, 0, sizeof(*d));
	d->origin_ns = origin_ns;
	d->reports = json_object_new_array();
	d->timeline = json_object_new_array();
	d->processes = json_object_new_array();
	d->top = calloc(TRACEDOC_MAX_TOP, sizeof(*d->top));
	if (!d->reports || !d->timeline || !d->processes || !d->top) {
		tracedoc_free(d);
		return -ENOMEM;
	}
	return 0;
}

void tracedoc_free(struct tracedoc *d)
{
	json_object_put(d->reports);
	json_object_put(d->timeline);
	json_object_put(d->processes);
	for (size_t i = 0; i < d->n_loops; i++)
		json_object_put(d->loops[i].stats);
	for (size_t i = 0; i < d->n_top; i++)
		free(d->top[i].entry_point);
	free(d->top);
	memset(d, 0, sizeof(*d));
}

/* ---- metadata of the processes -------------------------------------------------------- */

/* /proc/PID/cmdline: NUL-separated arguments, as an array. */
static struct json_object *command_line(pid_t pid)
{
	struct json_object *args = json_object_new_array();
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	n = proc_read_file(path, buf, sizeof(buf));
	for (ssize_t i = 0; i < n;) {
		size_t len = strnlen(buf + i, (size_t)(n - i));

		json_object_array_add(args, json_text(buf + i));
		i += (ssize_t)len + 1;
	}
	return args;
}

void tracedoc_add_process(struct tracedoc *d, const struct py_target *t)
{
	struct json_object *o = json_object_new_object(), *py = json_object_new_object();
	bool shared = strstr(t->runtime_path, "libpython") != NULL;

	json_object_object_add(o, "pid", json_object_new_int(t->pid));
	if (t->place.ns_pid)
		json_object_object_add(o, "ns_pid", json_object_new_int(t->place.ns_pid));
	json_object_object_add(o, "command_line", command_line(t->pid));
	json_object_object_add(py, "version", json_object_new_string(t->version));
	json_object_object_add(py, "runtime", json_text(t->runtime_path));
	json_object_object_add(py, "build", json_object_new_string(shared ? "shared library"
									   : "executable"));
	json_object_object_add(py, "layout", json_object_new_string(t->layout_source));
	json_object_object_add(o, "python", py);
	/* the same pid again has exec'd a new program: that one is what ran */
	for (size_t i = 0; i < json_object_array_length(d->processes); i++) {
		struct json_object *p = json_object_array_get_idx(d->processes, i);

		if (json_object_get_int(json_object_object_get(p, "pid")) == t->pid) {
			json_object_array_put_idx(d->processes, i, o);
			return;
		}
	}
	json_object_array_add(d->processes, o);
}

/* ---- per loop counts and the top list ----------------------------------------------- */

static struct tracedoc_loop *find_loop(struct tracedoc *d, pid_t pid, pid_t tid)
{
	for (size_t i = 0; i < d->n_loops; i++)
		if (d->loops[i].tid == tid)
			return &d->loops[i];
	if (d->n_loops >= TRACEDOC_MAX_LOOPS)
		return NULL;
	d->loops[d->n_loops] = (struct tracedoc_loop){ .pid = pid, .tid = tid };
	return &d->loops[d->n_loops++];
}

static void add_top(struct tracedoc *d, const struct report *r)
{
	const char *where = report_entry_point(r);
	struct tracedoc_top *t = NULL;

	for (size_t i = 0; i < d->n_top && !t; i++)
		if (!strcmp(d->top[i].entry_point, where))
			t = &d->top[i];
	if (!t) {
		if (d->n_top >= TRACEDOC_MAX_TOP) {
			d->lost_document++;
			return;
		}
		t = &d->top[d->n_top];
		t->entry_point = strdup(where);
		if (!t->entry_point)
			return;
		d->n_top++;
	}
	t->count++;
	t->total_ms += r->elapsed_ms;
	if (r->elapsed_ms > t->max_ms)
		t->max_ms = r->elapsed_ms;
	if (t->count == 1 || r->level > t->highest)
		t->highest = r->level;
}

/* ---- timeline ---------------------------------------------------------------------------- */

/* Trace Event Format timestamps are microseconds; ours start at the trace's origin. */
static struct json_object *micros(const struct tracedoc *d, uint64_t ns)
{
	return json_rounded(ns > d->origin_ns ? (ns - d->origin_ns) / 1e3 : 0, 3);
}

static bool room_for_slice(struct tracedoc *d)
{
	if (d->n_slices < TRACEDOC_MAX_SLICES) {
		d->n_slices++;
		return true;
	}
	d->lost_slices++;
	return false;
}

static struct json_object *slice(const struct tracedoc *d, const char *name, const char *cat,
				 uint32_t pid, uint32_t tid, uint64_t start_ns, uint64_t dur_ns)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_text(name));
	json_object_object_add(o, "cat", json_object_new_string(cat));
	json_object_object_add(o, "ph", json_object_new_string("X"));
	json_object_object_add(o, "pid", json_object_new_int(pid));
	json_object_object_add(o, "tid", json_object_new_int(tid));
	json_object_object_add(o, "ts", micros(d, start_ns));
	json_object_object_add(o, "dur", json_rounded(dur_ns / 1e3, 3));
	return o;
}

static void timeline_report(struct tracedoc *d, const struct report *r,
			    struct json_object *report_json)
{
	uint64_t dur = (uint64_t)(r->elapsed_ms * 1e6 + 0.5);
	struct json_object *cb, *args;

	if (!room_for_slice(d))
		return;
	cb = slice(d, r->is_task ? r->task_name : r->callback, "callback", r->pid, r->tid,
		   r->start_ns, dur);
	args = json_object_new_object();
	json_object_object_add(args, "severity_level",
			       json_object_new_string(severity_level_name(r->level)));
	json_object_object_add(args, "severity_score", json_object_new_int(r->score));
	json_object_object_add(args, "report", json_object_get(report_json));
	json_object_object_add(cb, "args", args);
	json_object_array_add(d->timeline, cb);
	for (size_t i = 0; i < r->n_events; i++) {
		const struct report_event *e = &r->events[i];
		uint64_t start = e->start_ns >= r->start_ns ? e->start_ns : r->start_ns;
		uint64_t edur = (uint64_t)(e->duration_ms * 1e6 + 0.5);
		struct json_object *ev;

		if (!room_for_slice(d))
			return;
		/* nested in its callback: never past the callback's end */
		if (start > r->start_ns + dur)
			start = r->start_ns + dur;
		if (start + edur > r->start_ns + dur)
			edur = r->start_ns + dur - start;
		ev = slice(d, e->event, category_name(e->category), r->pid, r->tid, start, edur);
		args = json_object_new_object();
		json_object_object_add(args, "severity", json_object_new_int(e->severity));
		json_object_object_add(args, "syscall",
				       e->syscall ? json_object_new_string(e->syscall) : NULL);
		json_object_object_add(args, "entry_point", json_text(e->entry_point ?
								      e->entry_point : ""));
		json_object_object_add(args, "trace", json_text(e->trace ? e->trace : ""));
		json_object_object_add(ev, "args", args);
		json_object_array_add(d->timeline, ev);
	}
}

void tracedoc_add_iteration(struct tracedoc *d, const struct event_iteration *ev)
{
	struct json_object *o, *args;

	if (!room_for_slice(d))
		return;
	o = slice(d, "loop iteration", "iteration", ev->h.pid, ev->h.tid, ev->h.ts_ns,
		  ev->duration_ns);
	args = json_object_new_object();
	json_object_object_add(args, "callbacks", json_object_new_int64(ev->callbacks));
	if (ev->lag)	/* none of its callbacks was slow: a slow_iteration report */
		json_object_object_add(args, "lag", json_object_new_boolean(true));
	json_object_object_add(o, "args", args);
	json_object_array_add(d->timeline, o);
}

void tracedoc_add_report(struct tracedoc *d, const struct report *r)
{
	struct tracedoc_loop *loop = find_loop(d, r->pid, r->tid);
	struct json_object *o;

	if (loop && r->ns_tid)
		loop->ns_tid = r->ns_tid;
	/* the loop's lag is no callback: no level to count, no entry point to group by */
	if (loop && r->exceeded && !r->slow_iteration)
		loop->slow[r->level]++;
	if (!r->slow_iteration)
		add_top(d, r);
	if (json_object_array_length(d->reports) >= TRACEDOC_MAX_REPORTS) {
		d->lost_document++;
		return;
	}
	o = report_to_json(r);
	json_object_array_add(d->reports, o);
	/* (its iteration is on the timeline already: tracedoc_add_iteration) */
	if (!r->slow_iteration)
		timeline_report(d, r, o);
}

/* ---- loop statistics ------------------------------------------------------------------- */

void loop_hist_bounds(unsigned bucket, uint64_t *lo, uint64_t *hi)
{
	unsigned octave, quarter;

	if (bucket < 16) {
		*lo = bucket * 1000ull;
		*hi = *lo + 1000;
		return;
	}
	octave = 4 + (bucket - 16) / 4;
	quarter = (bucket - 16) % 4;
	*lo = ((4ull + quarter) << (octave - 2)) * 1000;
	*hi = *lo + (1ull << (octave - 2)) * 1000;
}

uint64_t loop_stats_percentile_ns(const struct loop_stats *s, double p)
{
	uint64_t total = 0, seen = 0, want, lo, hi;

	for (unsigned i = 0; i < LOOP_HIST_BUCKETS; i++)
		total += s->hist[i];
	if (!total)
		return 0;
	if (p >= 1.0)
		return s->max_busy_ns;
	want = (uint64_t)(p * total + 0.999999);
	if (want < 1)
		want = 1;
	for (unsigned i = 0; i < LOOP_HIST_BUCKETS; i++) {
		seen += s->hist[i];
		if (seen < want)
			continue;
		/* the middle of the bucket, never above the largest iteration seen */
		loop_hist_bounds(i, &lo, &hi);
		lo += (hi - lo) / 2;
		return s->max_busy_ns && lo > s->max_busy_ns ? s->max_busy_ns : lo;
	}
	return s->max_busy_ns;
}

static struct json_object *ms(uint64_t ns)
{
	return json_rounded(ns / 1e6, 3);
}

void tracedoc_add_loop_stats(struct tracedoc *d, pid_t tid, const struct loop_stats *s)
{
	struct tracedoc_loop *loop = find_loop(d, s->pid, tid);
	struct json_object *o, *busy;

	if (!loop)
		return;
	loop->pid = s->pid;
	o = json_object_new_object();
	busy = json_object_new_object();
	json_object_object_add(o, "iterations", json_object_new_int64(s->iterations));
	json_object_object_add(o, "busy_ms_total", ms(s->busy_ns));
	json_object_object_add(busy, "p50", ms(loop_stats_percentile_ns(s, 0.50)));
	json_object_object_add(busy, "p90", ms(loop_stats_percentile_ns(s, 0.90)));
	json_object_object_add(busy, "p99", ms(loop_stats_percentile_ns(s, 0.99)));
	json_object_object_add(busy, "max", ms(s->max_busy_ns));
	json_object_object_add(o, "busy_ms", busy);
	json_object_object_add(o, "callbacks", json_object_new_int64(s->callbacks));
	json_object_put(loop->stats);
	loop->stats = o;
}

void tracedoc_set_lost(struct tracedoc *d, uint64_t ring_buffer, uint64_t per_callback)
{
	d->lost_ring_buffer = ring_buffer;
	d->lost_per_callback = per_callback;
}

/* ---- as a sink of the engine ------------------------------------------------------------ */

static void sink_report(void *ctx, const struct watched *w, const struct report *r)
{
	tracedoc_add_report(ctx, r);
}

static void sink_iteration(void *ctx, const struct watched *w, const struct event_iteration *ev)
{
	tracedoc_add_iteration(ctx, ev);
}

static void sink_loop_stats(void *ctx, const struct watched *w, pid_t tid, pid_t ns_tid,
			    const struct loop_stats *s)
{
	struct tracedoc *d = ctx;
	struct tracedoc_loop *loop;

	tracedoc_add_loop_stats(d, tid, s);
	loop = find_loop(d, w->pid, tid);
	if (loop && ns_tid)
		loop->ns_tid = ns_tid;
}

static void sink_process(void *ctx, const struct watched *w, enum process_change change)
{
	if (change == PROCESS_WATCHED)
		tracedoc_add_process(ctx, &w->target);
}

struct engine_sink tracedoc_sink(struct tracedoc *d)
{
	return (struct engine_sink){ .report = sink_report, .iteration = sink_iteration,
				     .loop_stats = sink_loop_stats, .process = sink_process,
				     .ctx = d };
}

/* ---- metadata --------------------------------------------------------------------------- */

static struct json_object *iso_time(double t)
{
	time_t secs = (time_t)t;
	struct tm tm;
	char buf[64], out[80];

	gmtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, sizeof(out), "%s.%06ldZ", buf, (long)((t - (double)secs) * 1e6));
	return json_object_new_string(out);
}

struct json_object *tracedoc_metadata(const struct engine_options *opt, double duration_s,
				      enum tracedoc_format format, double start, double end,
				      const char *end_reason)
{
	struct json_object *o = json_object_new_object(), *opts = json_object_new_object();
	struct utsname u;

	if (uname(&u))
		memset(&u, 0, sizeof(u));
	json_object_object_add(o, "aiocopd_version", json_object_new_string(AIOCOPD_VERSION));
	json_object_object_add(o, "host", json_text(u.nodename));
	json_object_object_add(o, "kernel", json_text(u.release));
	json_object_object_add(opts, "threshold_ms", json_rounded(opt->threshold_ms, 3));
	json_object_object_add(opts, "trace_depth", json_object_new_int(opt->trace_depth));
	json_object_object_add(opts, "all", json_object_new_boolean(opt->report_all));
	json_object_object_add(opts, "duration_s", duration_s > 0 ?
			       json_rounded(duration_s, 3) : NULL);
	json_object_object_add(opts, "format", json_object_new_string(
			       format == TRACEDOC_CHROME ? "chrome" : "json"));
	json_object_object_add(o, "options", opts);
	json_object_object_add(o, "start_time", iso_time(start));
	json_object_object_add(o, "end_time", iso_time(end));
	json_object_object_add(o, "duration_s", json_rounded(end - start, 3));
	json_object_object_add(o, "end_reason", json_object_new_string(end_reason));
	json_object_object_add(o, "target_exited",
			       json_object_new_boolean(!strcmp(end_reason, "target_exited")));
	return o;
}

/* ---- the document ---------------------------------------------------------------------- */

static struct json_object *loops_json(const struct tracedoc *d, double seconds)
{
	struct json_object *list = json_object_new_array();

	for (size_t i = 0; i < d->n_loops; i++) {
		const struct tracedoc_loop *l = &d->loops[i];
		struct json_object *o = json_object_new_object(), *slow = json_object_new_object();
		struct json_object *busy_total = NULL;
		double busy_ms = 0;

		json_object_object_add(o, "pid", json_object_new_int(l->pid));
		json_object_object_add(o, "tid", json_object_new_int(l->tid));
		if (l->ns_tid)
			json_object_object_add(o, "ns_tid", json_object_new_int(l->ns_tid));
		if (l->stats) {
			json_object_object_foreach(l->stats, key, val)
				json_object_object_add(o, key, json_object_get(val));
			busy_total = json_object_object_get(l->stats, "busy_ms_total");
			busy_ms = busy_total ? json_object_get_double(busy_total) : 0;
		} else {
			json_object_object_add(o, "iterations", json_object_new_int(0));
			json_object_object_add(o, "busy_ms_total", json_object_new_int(0));
			json_object_object_add(o, "busy_ms", NULL);
			json_object_object_add(o, "callbacks", json_object_new_int(0));
		}
		json_object_object_add(o, "busy_fraction",
				       json_rounded(seconds > 0 ? busy_ms / (seconds * 1e3) : 0, 4));
		for (int lvl = 0; lvl < 3; lvl++)
			json_object_object_add(slow, severity_level_name(lvl),
					       json_object_new_int64(l->slow[lvl]));
		json_object_object_add(o, "slow_callbacks", slow);
		json_object_array_add(list, o);
	}
	return list;
}

static int by_count_then_total(const void *a, const void *b)
{
	const struct tracedoc_top *x = a, *y = b;

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->total_ms < y->total_ms ? 1 : x->total_ms > y->total_ms ? -1 : 0;
}

static struct json_object *top_json(struct tracedoc *d)
{
	struct json_object *list = json_object_new_array();

	qsort(d->top, d->n_top, sizeof(*d->top), by_count_then_total);
	for (size_t i = 0; i < d->n_top; i++) {
		const struct tracedoc_top *t = &d->top[i];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "entry_point", json_text(t->entry_point));
		json_object_object_add(o, "count", json_object_new_int64(t->count));
		json_object_object_add(o, "total_ms", json_rounded(t->total_ms, 3));
		json_object_object_add(o, "max_ms", json_rounded(t->max_ms, 3));
		json_object_object_add(o, "highest_level",
				       json_object_new_string(severity_level_name(t->highest)));
		json_object_array_add(list, o);
	}
	return list;
}

static struct json_object *lost_json(const struct tracedoc *d, enum tracedoc_format format)
{
	struct json_object *o = json_object_new_object();
	uint64_t document = d->lost_document + (format == TRACEDOC_CHROME ? d->lost_slices : 0);

	json_object_object_add(o, "total", json_object_new_int64(d->lost_ring_buffer +
								 d->lost_per_callback +
								 document));
	json_object_object_add(o, "ring_buffer", json_object_new_int64(d->lost_ring_buffer));
	json_object_object_add(o, "per_callback_limit",
			       json_object_new_int64(d->lost_per_callback));
	json_object_object_add(o, "document_limit", json_object_new_int64(document));
	return o;
}

static int by_ts(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a;
	struct json_object *y = *(struct json_object *const *)b;
	double tx = json_object_get_double(json_object_object_get(x, "ts"));
	double ty = json_object_get_double(json_object_object_get(y, "ts"));

	return tx < ty ? -1 : tx > ty;
}

/* Names each process and loop thread's track. */
static void timeline_names(struct tracedoc *d, struct json_object *events)
{
	size_t n = json_object_array_length(d->processes);

	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(d->processes, i);
		struct json_object *cmd = json_object_object_get(p, "command_line");
		struct json_object *o = json_object_new_object(), *args = json_object_new_object();
		int pid = json_object_get_int(json_object_object_get(p, "pid"));
		char name[300];

		snprintf(name, sizeof(name), "%s (PID %d)",
			 json_object_array_length(cmd) ?
			 json_object_get_string(json_object_array_get_idx(cmd, 0)) : "python", pid);
		json_object_object_add(o, "name", json_object_new_string("process_name"));
		json_object_object_add(o, "ph", json_object_new_string("M"));
		json_object_object_add(o, "pid", json_object_new_int(pid));
		json_object_object_add(o, "tid", json_object_new_int(pid));
		json_object_object_add(args, "name", json_text(name));
		json_object_object_add(o, "args", args);
		json_object_array_add(events, o);
	}
	for (size_t i = 0; i < d->n_loops; i++) {
		struct json_object *o = json_object_new_object(), *args = json_object_new_object();
		char name[64];

		snprintf(name, sizeof(name), "event loop (tid %d)", d->loops[i].tid);
		json_object_object_add(o, "name", json_object_new_string("thread_name"));
		json_object_object_add(o, "ph", json_object_new_string("M"));
		json_object_object_add(o, "pid", json_object_new_int(d->loops[i].pid));
		json_object_object_add(o, "tid", json_object_new_int(d->loops[i].tid));
		json_object_object_add(args, "name", json_object_new_string(name));
		json_object_object_add(o, "args", args);
		json_object_array_add(events, o);
	}
}

struct json_object *tracedoc_build(struct tracedoc *d, struct json_object *metadata,
				   enum tracedoc_format format)
{
	struct json_object *doc = json_object_new_object(), *events;
	double seconds = json_object_get_double(json_object_object_get(metadata, "duration_s"));

	/* the traced process, or exec's first Python process, where the caller did not say */
	if (json_object_array_length(d->processes)) {
		struct json_object *first = json_object_array_get_idx(d->processes, 0);
		/* its ns_pid only beside its own pid (exec's metadata names the command's) */
		bool same_pid = !json_object_object_get_ex(metadata, "pid", NULL);

		json_object_object_foreach(first, key, val)
			if (!json_object_object_get_ex(metadata, key, NULL) &&
			    (same_pid || strcmp(key, "ns_pid")))
				json_object_object_add(metadata, key, json_object_get(val));
	}
	json_object_object_add(metadata, "processes", json_object_get(d->processes));
	if (format == TRACEDOC_CHROME) {
		events = json_object_new_array();
		timeline_names(d, events);
		for (size_t i = 0; i < json_object_array_length(d->timeline); i++)
			json_object_array_add(events, json_object_get(
					      json_object_array_get_idx(d->timeline, i)));
		json_object_object_add(doc, "traceEvents", events);
		json_object_object_add(doc, "displayTimeUnit", json_object_new_string("ms"));
		json_object_object_add(metadata, "lost", lost_json(d, format));
		json_object_object_add(doc, "otherData", metadata);
		return doc;
	}
	json_object_array_sort(d->reports, by_ts);
	json_object_object_add(doc, "format", json_object_new_string("aiocopd-trace"));
	json_object_object_add(doc, "format_version",
			       json_object_new_int(TRACEDOC_FORMAT_VERSION));
	json_object_object_add(doc, "metadata", metadata);
	json_object_object_add(doc, "loops", loops_json(d, seconds));
	json_object_object_add(doc, "reports", json_object_get(d->reports));
	json_object_object_add(doc, "top", top_json(d));
	json_object_object_add(doc, "lost", lost_json(d, format));
	return doc;
}

/* ---- writing ------------------------------------------------------------------------------ */

/*
 * An unnamed file in path's directory (O_TMPFILE): if aiocopd is killed, the kernel drops
 * it and nothing is left beside the output. It gets a name only when it is complete.
 */
static int open_unnamed(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path + 1), path) >=
		 sizeof(dir))
		return -ENAMETOOLONG;
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	return fd < 0 ? -errno : fd;
}

/* Gives the complete unnamed file a name of its own beside path, for the rename. */
static int name_unnamed(int fd, const char *path, char *tmp_path, size_t tmp_size)
{
	char self[64];

	if ((size_t)snprintf(tmp_path, tmp_size, "%s.tmp.%d", path, (int)getpid()) >= tmp_size)
		return -ENAMETOOLONG;
	unlink(tmp_path);	/* a leftover of a pid that was ours before */
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	return linkat(AT_FDCWD, self, AT_FDCWD, tmp_path, AT_SYMLINK_FOLLOW) ? -errno : 0;
}

int tracedoc_open_tmp(const char *path, char *tmp_path, size_t tmp_size)
{
	struct stat st;
	int fd;

	/* the rename at the end would fail on a directory: say so now */
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return -EISDIR;
	if ((size_t)snprintf(tmp_path, tmp_size, "%s.tmp.XXXXXX", path) >= tmp_size)
		return -ENAMETOOLONG;
	fd = open_unnamed(path);
	if (fd >= 0) {
		tmp_path[0] = 0;	/* no name yet */
		return fd;
	}
	if (fd != -EOPNOTSUPP && fd != -EISDIR)
		return fd;	/* (a file system without O_TMPFILE: a named one then) */
	fd = mkostemp(tmp_path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fchmod(fd, 0644);
	return fd;
}

int tracedoc_write_atomic(struct json_object *doc, const char *tmp_path, int tmp_fd,
			  const char *path)
{
	const char *text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
							  JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t len = strlen(text), done = 0;
	char named[PATH_MAX + 32] = "";
	int ret = 0;

	while (done < len) {
		ssize_t n = write(tmp_fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			goto fail;
		}
		done += (size_t)n;
	}
	if (write(tmp_fd, "\n", 1) != 1 || fsync(tmp_fd)) {
		ret = -errno;
		goto fail;
	}
	if (!tmp_path[0]) {
		ret = name_unnamed(tmp_fd, path, named, sizeof(named));
		if (ret)
			goto fail;
		tmp_path = named;
	}
	if (close(tmp_fd)) {
		tmp_fd = -1;
		ret = -errno;
		goto fail;
	}
	tmp_fd = -1;
	if (rename(tmp_path, path)) {
		ret = -errno;
		goto fail;
	}
	return 0;
fail:
	if (tmp_fd >= 0)
		close(tmp_fd);
	if (tmp_path[0])
		unlink(tmp_path);
	return ret;
}
