// SPDX-License-Identifier: GPL-2.0
/*
 * The monitor: the processes watched, and the reports made of what their loops did. Blocking
 * records wait in the record buffer (records.c) until the callback record that closes them.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"
#include "procmem.h"
#include "syscall_nr.h"

#define DRAIN_INTERVAL_MS	100
#define WAITING_NOTICE_NS	1000000000ull
#define MAX_TRACE_TEXT		8192

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t monitor_now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

double monitor_wall_time(const struct monitor *m, uint64_t mono_ns)
{
	return ((int64_t)mono_ns + m->realtime_offset_ns) / 1e9;
}

struct watched *monitor_find(struct monitor *m, pid_t pid)
{
	for (size_t i = 0; i < m->n_procs; i++)
		if (m->procs[i]->target.pid == pid)
			return m->procs[i];
	return NULL;
}

/* ---- report building -------------------------------------------------------------------- */

/* Text that filled its fixed-size BPF buffer was cut: say so rather than show a wrong name. */
static const char *mark_cut(const char *text, size_t bufsz, char *out, size_t outsz)
{
	size_t n = strnlen(text, bufsz);

	if (n < bufsz - 1)
		return text;
	snprintf(out, outsz, "%.*s...", (int)n, text);
	return out;
}

struct raw_text {
	char path[AIOCOPD_STR_LEN + 4];
	char args[3][AIOCOPD_NAME_LEN + 4];
};

static void raw_from_record(const struct record *rec, struct raw_op *r, struct raw_text *t)
{
	const struct event_blocking *e = rec->ev;
	static const char empty[] = "";

	memset(r, 0, sizeof(*r));
	r->audit = e->source == SOURCE_AUDIT;
	r->sample = e->source == SOURCE_SAMPLE;
	r->nr = e->nr;
	memcpy(r->args, e->args, sizeof(r->args));
	r->ret = e->ret;
	r->fd_mode = e->fd_mode;
	r->start_ns = e->h.ts_ns;
	r->duration_ns = e->duration_ns;
	if (e->n_frames) {
		r->site_code = e->frames[0].code;
		r->site_instr = e->frames[0].instr;
	}
	if (r->audit) {
		r->name = e->str;
		for (int i = 0; i < 3; i++)
			r->arg_text[i] = e->arg_text[i][0] ?
					 mark_cut(e->arg_text[i], sizeof(e->arg_text[i]),
						  t->args[i], sizeof(t->args[i])) : empty;
		return;
	}
	if (e->fd_mode && rec->fd_path && rec->fd_path[0])
		r->fd_path = rec->fd_path;
	if (e->n_str && (e->nr == NR_connect || e->nr == NR_sendto || e->nr == NR_nanosleep ||
			 e->nr == NR_clock_nanosleep)) {
		r->sockaddr = (const uint8_t *)e->str;
		r->sockaddr_len = e->n_str < sizeof(e->str) ? e->n_str : sizeof(e->str);
	} else if (e->n_str) {
		r->path = mark_cut(e->str, sizeof(e->str), t->path, sizeof(t->path));
	}
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* Builds trace, short trace and entry point of one record's stack. */
/*
 * CPython's own shim frames have no source: 3.13 runs __init__ of a class call through a
 * static code object named "__init__" in a file named "__init__", with no line table.
 */
static bool is_shim_frame(const struct py_location *loc)
{
	return loc->line <= 0 && loc->file[0] != '<' && strcmp(loc->file, "?") &&
	       !strchr(loc->file, '/');
}

/* Builds trace, short trace and entry point of one record's stack. */
static void describe_stack(struct monitor *m, struct watched *w, const struct event_blocking *e,
			   struct report_event *out)
{
	char *trace = calloc(1, MAX_TRACE_TEXT), *shortt = calloc(1, MAX_TRACE_TEXT);
	char frame[1024], entry[1024] = "", innermost[1024] = "";
	size_t used = 0, sused = 0;
	unsigned n = e->n_frames, shown = 0;

	if (!trace || !shortt)
		goto out;
	if (n > AIOCOPD_MAX_FRAMES)
		n = AIOCOPD_MAX_FRAMES;
	for (unsigned i = 0; i < n && shown < m->opt->trace_depth; i++) {
		struct py_location loc;

		pyresolver_locate(w->resolver, e->frames[i].code, e->frames[i].instr, &loc);
		if (is_shim_frame(&loc))
			continue;
		snprintf(frame, sizeof(frame), "%s:%d:%s", loc.file, loc.line, loc.function);
		if (shown == 0)
			snprintf(innermost, sizeof(innermost), "%s", frame);
		if (!entry[0] && !is_stdlib_path(loc.file))
			snprintf(entry, sizeof(entry), "%s", frame);
		if (used < MAX_TRACE_TEXT)
			used += snprintf(trace + used, MAX_TRACE_TEXT - used, "%s%s",
					 shown ? " <- " : "", frame);
		if (shown < TEXT_TRACE_FRAMES && sused < MAX_TRACE_TEXT)
			sused += snprintf(shortt + sused, MAX_TRACE_TEXT - sused, "%s%s:%d:%s",
					  shown ? " <- " : "", base_name(loc.file), loc.line,
					  loc.function);
		else if (shown == TEXT_TRACE_FRAMES && sused < MAX_TRACE_TEXT)
			sused += snprintf(shortt + sused, MAX_TRACE_TEXT - sused, " <- ...");
		shown++;
	}
out:
	out->trace = trace;
	out->trace_short = shortt;
	out->entry_point = strdup(entry[0] ? entry : innermost);
}

/* Names read by BPF are ASCII or Latin-1 (the only str kinds it copies). */
static void copy_name(char *dst, size_t dstsz, const char *src, size_t srcsz)
{
	latin1_to_utf8((const uint8_t *)src, strnlen(src, srcsz), dst, dstsz);
}

static void name_callback(const struct event_callback *ev, struct report *r)
{
	const struct callback_ident *id = &ev->ident;

	if (!ev->ident_valid) {
		snprintf(r->callback, sizeof(r->callback), "<unknown>");
		return;
	}
	switch (id->kind) {
	case CB_TASK_STEP:
	case CB_TASK_WAKEUP:
		r->is_task = true;
		if (id->name_is_int)
			snprintf(r->task_name, sizeof(r->task_name), "Task-%llu",
				 (unsigned long long)id->name_int);
		else
			copy_name(r->task_name, sizeof(r->task_name), id->task_name,
				  sizeof(id->task_name));
		copy_name(r->coro, sizeof(r->coro), id->qualname, sizeof(id->qualname));
		snprintf(r->callback, sizeof(r->callback), "%s",
			 id->kind == CB_TASK_STEP ? "Task.__step" : "Task.__wakeup");
		break;
	case CB_FUNCTION:
		copy_name(r->callback, sizeof(r->callback), id->qualname, sizeof(id->qualname));
		break;
	default:
		snprintf(r->callback, sizeof(r->callback), "%.*s", (int)sizeof(id->type_name),
			 id->type_name);
		break;
	}
}

/*
 * A Task's name, through the Handle that ran it ("self" of Handle._run), trusted only when
 * the Task's coroutine owns exactly the frame the stack shows: the objects may be gone by now.
 */
static void task_name_from_handle(struct watched *w, const struct py_frame *run,
				  const struct py_frame *coro_frame, struct report *r)
{
	const struct py_version_layout *l = w->target.layout;
	uint64_t callback, task, coro, name;
	pid_t pid = w->target.pid;

	uint64_t coro_frame_addr = 0;

	if (procmem_read_u64(pid, run->first_local + l->bpf.handle_callback, &callback) ||
	    procmem_read_u64(pid, callback + l->bpf.stepwrapper_task, &task) ||
	    procmem_read_u64(pid, task + l->bpf.task_coro, &coro) ||
	    (l->user.coro_frame_ptr ?
	     procmem_read_u64(pid, coro + l->user.coro_frame_ptr, &coro_frame_addr) :
	     (coro_frame_addr = coro + l->user.coro_iframe, 0)) ||
	    coro_frame_addr != coro_frame->addr ||
	    procmem_read_u64(pid, task + l->bpf.task_name, &name) ||
	    pyresolver_read_str(pid, l, name, r->task_name, sizeof(r->task_name)))
		snprintf(r->task_name, sizeof(r->task_name), "?");
}

static bool is_handle_run(const struct py_location *loc)
{
	return !strcmp(loc->function, "_run") && path_ends_with(loc->file, "asyncio/events.py");
}

/* Whether a record's stack runs inside asyncio's Handle._run, i.e. inside a loop callback. */
static bool stack_in_callback(struct watched *w, const struct event_blocking *e)
{
	unsigned n = e->n_frames < AIOCOPD_MAX_FRAMES ? e->n_frames : AIOCOPD_MAX_FRAMES;

	for (unsigned k = 0; k < n; k++) {
		struct py_location loc;

		pyresolver_locate(w->resolver, e->frames[k].code, e->frames[k].instr, &loc);
		if (is_handle_run(&loc))
			return true;
	}
	return false;
}

/* A stack whose code objects could not be read (the target exited) proves nothing. */
static bool stack_readable(struct watched *w, const struct event_blocking *e)
{
	struct py_location loc;

	pyresolver_locate(w->resolver, e->frames[0].code, e->frames[0].instr, &loc);
	return strcmp(loc.file, "?") != 0;
}

/* uvloop runs callbacks from Cython: no Handle._run frame shows on the stack. */
static bool uses_uvloop(struct watched *w)
{
	if (!w->uvloop)
		w->uvloop = target_maps_file(w->target.pid, "/uvloop/loop.");
	return w->uvloop;
}

/*
 * A loop that stops (asyncio.run returning) leaves its last callback or iteration open until
 * the thread's next epoll_wait, maybe seconds later in another asyncio.run. What happened
 * in between ran outside any callback, and its stacks say so: such a report is dropped.
 */
static bool outside_any_callback(struct watched *w, const struct record *recs, size_t n_rec)
{
	size_t with_stack = 0;

	for (size_t i = 0; i < n_rec; i++) {
		if (!recs[i].ev->n_frames || !stack_readable(w, recs[i].ev))
			continue;
		with_stack++;
		if (stack_in_callback(w, recs[i].ev))
			return false;
	}
	/* uvloop's callbacks never show Handle._run: read its maps only when it matters */
	return with_stack > 0 && !uses_uvloop(w);
}

static bool is_loop_machinery(const struct py_location *loc)
{
	return path_ends_with(loc->file, "asyncio/runners.py") ||
	       path_ends_with(loc->file, "asyncio/base_events.py") ||
	       !strcmp(loc->function, "<module>");
}

/*
 * uvloop: the callback's outermost frame sits right above whatever started the loop
 * (asyncio.run's frames, or the module). The Task itself cannot be reached from there.
 */
static void attribute_from_outermost(struct watched *w, const struct record *recs, size_t n_rec,
				     struct report *r)
{
	for (size_t i = 0; i < n_rec; i++) {
		const struct event_blocking *e = recs[i].ev;
		unsigned n = e->n_frames < AIOCOPD_MAX_FRAMES ? e->n_frames : AIOCOPD_MAX_FRAMES;

		for (unsigned k = 1; k < n; k++) {
			const struct py_frame *inner = &e->frames[k - 1];
			struct py_location loc;

			pyresolver_locate(w->resolver, e->frames[k].code, e->frames[k].instr, &loc);
			if (!is_loop_machinery(&loc))
				continue;
			pyresolver_locate(w->resolver, inner->code, inner->instr, &loc);
			if (inner->owner == w->target.layout->user.frame_owner_generator) {
				r->is_task = true;
				snprintf(r->task_name, sizeof(r->task_name), "?");
				snprintf(r->coro, sizeof(r->coro), "%s", loc.qualname);
				snprintf(r->callback, sizeof(r->callback), "Task.__step");
			} else {
				snprintf(r->callback, sizeof(r->callback), "%s", loc.qualname);
			}
			return;
		}
	}
}

/* Unarmed reports: name the callback from the frame Handle._run called. */
static void attribute_iteration(struct watched *w, const struct record *recs, size_t n_rec,
				struct report *r)
{
	snprintf(r->callback, sizeof(r->callback), "<loop iteration>");
	for (size_t i = 0; i < n_rec; i++) {
		const struct event_blocking *e = recs[i].ev;
		unsigned n = e->n_frames < AIOCOPD_MAX_FRAMES ? e->n_frames : AIOCOPD_MAX_FRAMES;

		for (unsigned k = 1; k < n; k++) {
			const struct py_frame *f = &e->frames[k], *inner = &e->frames[k - 1];
			struct py_location loc;

			pyresolver_locate(w->resolver, f->code, f->instr, &loc);
			if (!is_handle_run(&loc))
				continue;
			pyresolver_locate(w->resolver, inner->code, inner->instr, &loc);
			if (inner->owner == w->target.layout->user.frame_owner_generator) {
				r->is_task = true;
				snprintf(r->coro, sizeof(r->coro), "%s", loc.qualname);
				snprintf(r->callback, sizeof(r->callback), "Task.__step");
				task_name_from_handle(w, f, inner, r);
			} else {
				snprintf(r->callback, sizeof(r->callback), "%s", loc.qualname);
			}
			return;
		}
	}
	attribute_from_outermost(w, recs, n_rec, r);
}

/* Groups the CPU samples taken during the callback by stack, most frequent first. */
static void collect_cpu_samples(struct monitor *m, struct watched *w,
				const struct record *recs, size_t n_rec, struct report *out)
{
	struct report_cpu_stack all[RECORDS_PER_CALLBACK];
	size_t n = 0;

	for (size_t i = 0; i < n_rec; i++) {
		struct report_event stack = {};
		size_t k;

		if (recs[i].ev->source != SOURCE_SAMPLE || !recs[i].ev->n_frames)
			continue;
		out->cpu_samples++;
		describe_stack(m, w, recs[i].ev, &stack);
		for (k = 0; k < n; k++)
			if (stack.trace && all[k].trace && !strcmp(all[k].trace, stack.trace))
				break;
		if (k < n) {
			all[k].count++;
			free(stack.trace);
			free(stack.trace_short);
			free(stack.entry_point);
			continue;
		}
		all[n++] = (struct report_cpu_stack){ stack.entry_point, stack.trace,
						      stack.trace_short, 1 };
	}
	/* a handful of stacks: a selection of the most frequent is plenty */
	for (size_t i = 0; i < n; i++) {
		size_t best = i;

		for (size_t k = i + 1; k < n; k++)
			if (all[k].count > all[best].count)
				best = k;
		if (i < REPORT_MAX_CPU_STACKS) {
			struct report_cpu_stack tmp = all[i];

			all[i] = all[best];
			all[best] = tmp;
			out->cpu[out->n_cpu++] = all[i];
		} else {
			free(all[i].trace);
			free(all[i].trace_short);
			free(all[i].entry_point);
		}
	}
}

static int build_report(struct monitor *m, struct watched *w, const struct event_callback *ev,
			const struct record *recs, size_t n_rec, struct report *out)
{
	struct op ops[RECORDS_PER_CALLBACK] = {};
	size_t n_ops = 0;

	memset(out, 0, sizeof(*out));
	out->ts = monitor_wall_time(m, ev->h.ts_ns);
	out->start_ns = ev->h.ts_ns;
	out->pid = ev->h.pid;
	out->tid = ev->h.tid;
	out->elapsed_ms = ev->duration_ns / 1e6;
	out->threshold_ms = m->opt->threshold_ms;
	out->exceeded = out->elapsed_ms >= m->opt->threshold_ms;
	out->oncpu_ms = ev->oncpu_ns / 1e6;
	if (out->oncpu_ms > out->elapsed_ms)
		out->oncpu_ms = out->elapsed_ms;
	out->offcpu_ms = out->elapsed_ms - out->oncpu_ms;
	out->gc_ms = ev->gc_ns / 1e6;
	if (out->gc_ms > out->elapsed_ms)
		out->gc_ms = out->elapsed_ms;
	if (n_rec && outside_any_callback(w, recs, n_rec))
		return -ENOENT;
	out->by_iteration = ev->scope == SCOPE_ITERATION;
	/* uvloop's callbacks, and iterations, are named from their stacks */
	if (!ev->ident_valid && n_rec)
		attribute_iteration(w, recs, n_rec, out);
	else
		name_callback(ev, out);
	for (size_t i = 0; i < n_rec; i++) {
		struct raw_text text;
		struct raw_op r;

		raw_from_record(&recs[i], &r, &text);
		n_ops = ops_add(ops, n_ops, RECORDS_PER_CALLBACK, &r, i);
	}
	out->events = calloc(n_ops ? n_ops : 1, sizeof(*out->events));
	if (!out->events)
		return -ENOMEM;
	for (size_t i = 0; i < n_ops; i++) {
		struct report_event *e = &out->events[i];

		memcpy(e->event, ops[i].name, sizeof(e->event));
		e->category = ops[i].category;
		e->severity = ops[i].weight;
		e->duration_ms = ops[i].duration_ns / 1e6;
		e->syscall = ops[i].syscall;
		e->start_ns = ops[i].start_ns;
		describe_stack(m, w, recs[ops[i].first_raw].ev, e);
	}
	out->n_events = n_ops;
	collect_cpu_samples(m, w, recs, n_rec, out);
	out->score = severity_score(ops, n_ops);
	out->level = severity_level(out->score);
	return 0;
}

int monitor_build_report(struct monitor *m, struct watched *w, const struct event_callback *ev,
			 struct report *out)
{
	struct record_set set = records_take(m->records, ev);
	int ret = build_report(m, w, ev, set.recs, set.n, out);

	record_set_free(&set);
	return ret;
}

/* ---- ring buffer ------------------------------------------------------------------------ */

/* A loop thread is counted and sampled once, whether we found it or BPF did. */
static bool note_loop_thread(struct monitor *m, pid_t pid, pid_t tid)
{
	struct loop_thread *seen;

	for (size_t i = 0; i < m->loop_threads; i++)
		if (m->loop_tids[i].tid == tid)
			return false;
	seen = realloc(m->loop_tids, (m->loop_threads + 1) * sizeof(*seen));
	if (!seen)
		return false;
	m->loop_tids = seen;
	m->loop_tids[m->loop_threads++] = (struct loop_thread){ pid, tid };
	probes_add_loop_thread(&m->probes, pid, tid, m->opt->stats);
	return true;
}

static void on_loop_thread(struct monitor *m, const struct event_loop_thread *ev)
{
	if (!monitor_find(m, ev->h.pid))
		return;
	if (note_loop_thread(m, ev->h.pid, ev->h.tid) && m->attached)
		fprintf(stderr, "aiocopd: event loop running in thread %u of PID %u\n", ev->h.tid,
			ev->h.pid);
}

static void emit(struct monitor *m, struct watched *w, const struct report *r)
{
	m->reports++;
	if (m->on_report)
		m->on_report(m, w, r);
	else if (m->opt->json)
		report_write_json(m->out, r);
	else
		report_write_text(m->out, r);
}

static void arm(struct monitor *m, struct watched *w)
{
	char err[256];

	if (w->armed)
		return;
	if (probes_arm(&m->probes, &w->target, &w->links, err, sizeof(err))) {
		fprintf(stderr, "aiocopd: %s; reports stay per loop iteration\n", err);
		return;
	}
	w->armed = true;
	if (m->opt->verbose)
		fprintf(stderr, "aiocopd: slow iteration in PID %d: probing its callbacks one by one\n",
			w->target.pid);
}

static void on_callback(struct monitor *m, const struct event_callback *ev)
{
	struct watched *w = monitor_find(m, ev->h.pid);
	struct report r;

	if (!w || w->exited)
		return;		/* its memory is gone: nothing left to name frames with */
	w->last_slow_ns = monitor_now_ns();
	if (monitor_build_report(m, w, ev, &r) != 0)
		return;		/* not a loop callback after all */
	emit(m, w, &r);
	report_free(&r);
	if (ev->scope == SCOPE_ITERATION)
		arm(m, w);
}

/* A target quiet for a while goes back to costing nothing per callback. */
static void maybe_disarm(struct monitor *m, struct watched *w, uint64_t now)
{
	if (!w->armed || m->opt->report_all || m->opt->armed_from_start ||
	    now - w->last_slow_ns < MONITOR_DISARM_AFTER_S * 1000000000ull)
		return;
	probes_disarm(&m->probes, &w->target, &w->links);
	w->armed = false;
	if (m->opt->verbose)
		fprintf(stderr, "aiocopd: PID %d quiet for %d s: callback probes detached\n",
			w->target.pid, MONITOR_DISARM_AFTER_S);
}

static void handle_record(struct monitor *m, const struct event_header *h, void *data,
			  size_t size)
{
	switch (h->type) {
	case EVENT_LOOP_THREAD:
		if (size >= sizeof(struct event_loop_thread))
			on_loop_thread(m, data);
		break;
	case EVENT_BLOCKING:
		if (size >= sizeof(struct event_blocking))
			records_add(m->records, data);
		break;
	case EVENT_CALLBACK:
		if (size >= sizeof(struct event_callback))
			on_callback(m, data);
		break;
	case EVENT_ITERATION:
		if (size >= sizeof(struct event_iteration) && m->on_iteration &&
		    monitor_find(m, h->pid))
			m->on_iteration(m, data);
		break;
	case EVENT_EXEC:
	case EVENT_ENTRY:
	case EVENT_FORK:
		if (size >= sizeof(struct event_process) && m->on_process)
			m->on_process(m, data);
		break;
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct monitor *m = ctx;
	const struct event_header *h = data;

	if (size < sizeof(*h))
		return 0;
	m->consuming = true;
	handle_record(m, h, data, size);
	m->consuming = false;
	return 0;
}

/* ---- attach ----------------------------------------------------------------------------- */

static bool waiting_in_epoll(pid_t pid, const char *tid)
{
	char path[320], buf[256];
	long nr;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/syscall", pid, tid);
	if (proc_read_file(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%ld", &nr) != 1)
		return false;
	return nr == NR_epoll_wait || nr == NR_epoll_pwait || nr == NR_epoll_pwait2;
}

/* Loop threads idle in epoll_wait right now: register them so their next callback counts. */
static void seed_loop_threads(struct monitor *m, pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int seen = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir)) && seen < 4096) {
		pid_t tid = atoi(d->d_name);

		seen++;
		if (tid > 0 && waiting_in_epoll(pid, d->d_name))
			note_loop_thread(m, pid, tid);
	}
	closedir(dir);
}

/* About ten samples per threshold, so a callback just over it still gets a few stacks. */
static uint64_t sample_period(double threshold_ms)
{
	uint64_t ns = (uint64_t)(threshold_ms * 1e6 / 10);

	if (ns < 1000000)
		ns = 1000000;
	if (ns > 10000000)
		ns = 10000000;
	return ns;
}

int monitor_open(struct monitor *m, const struct monitor_options *opt, char *err, size_t errsz)
{
	int ret;

	memset(m, 0, sizeof(*m));
	m->opt = opt;
	m->out = stdout;
	m->realtime_offset_ns = (int64_t)(clock_ns(CLOCK_REALTIME) - monitor_now_ns());
	m->records = records_new();
	if (!m->records) {
		snprintf(err, errsz, "out of memory");
		return -ENOMEM;
	}
	ret = probes_open(&m->probes, on_record, m, err, errsz);
	if (ret)
		return ret;
	m->probes.sample_period_ns = sample_period(opt->threshold_ms);
	return 0;
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

static void free_watched(struct watched *w)
{
	pyresolver_free(w->resolver);
	summary_free(&w->summary);
	free(w);
}

struct watched *monitor_add(struct monitor *m, const struct py_target *t, char *err,
			    size_t errsz)
{
	const struct monitor_options *opt = m->opt;
	bool armed = opt->report_all || opt->armed_from_start;
	struct target_cfg cfg = {};
	struct watched *w;

	w = monitor_find(m, t->pid);
	if (w)
		monitor_forget(m, w);	/* the same pid with a new program (exec) */
	if (m->n_procs >= MONITOR_MAX_PROCS) {
		snprintf(err, errsz, "too many processes watched (%d)", MONITOR_MAX_PROCS);
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	w->target = *t;
	w->target.layout = &w->target.layout_copy;
	read_cmdline(t->pid, w->cmdline, sizeof(w->cmdline));
	w->resolver = pyresolver_new(t->pid, w->target.layout);
	if (!w->resolver) {
		snprintf(err, errsz, "out of memory");
		free(w);
		return NULL;
	}
	cfg.runtime_addr = t->runtime_addr;
	cfg.threshold_ns = (uint64_t)(opt->threshold_ms * 1e6);
	cfg.sample_after_ns = cfg.threshold_ns / 2;
	/* armed from the start: no iteration may be timed as a whole before the uprobes */
	cfg.flags = (opt->report_all ? TARGET_REPORT_ALL : 0) | (armed ? TARGET_ARMED : 0) |
		    (opt->stats ? TARGET_STATS : 0);
	cfg.trace_depth = opt->trace_depth;
	cfg.layout = t->layout->bpf;
	if (probes_add_target(&m->probes, &w->target, &cfg, &w->links, err, errsz))
		goto fail;
	/* fast callbacks cannot show themselves in iteration times: --all probes from the start */
	if (armed) {
		err[0] = 0;
		if (probes_arm(&m->probes, &w->target, &w->links, err, errsz)) {
			if (!err[0])	/* its map entry went: it exec'd or exited meanwhile */
				snprintf(err, errsz, "PID %d exec'd or exited while attaching",
					 t->pid);
			goto fail;
		}
		w->armed = true;
	}
	m->procs[m->n_procs++] = w;
	seed_loop_threads(m, t->pid);
	/* loop threads found by BPF while we attached; not from inside a record's handler */
	if (!m->consuming)
		probes_consume(&m->probes);
	return w;
fail:
	probes_remove_target(&m->probes, t->pid, &w->links);
	free_watched(w);
	return NULL;
}

void monitor_forget(struct monitor *m, struct watched *w)
{
	for (size_t i = 0; i < m->n_procs; i++) {
		if (m->procs[i] != w)
			continue;
		if (!w->exited)
			probes_remove_target(&m->probes, w->target.pid, &w->links);
		m->procs[i] = m->procs[--m->n_procs];
		free_watched(w);
		return;
	}
}

/* Its thread ids may come back in another process, whose loop threads count anew. */
static void forget_loop_threads(struct monitor *m, pid_t pid)
{
	size_t kept = 0;

	for (size_t i = 0; i < m->loop_threads; i++)
		if (m->loop_tids[i].pid != pid)
			m->loop_tids[kept++] = m->loop_tids[i];
	m->loop_threads = kept;
}

void monitor_retire_exited(struct monitor *m)
{
	for (size_t i = 0; i < m->n_procs; i++) {
		struct watched *w = m->procs[i];

		if (w->exited || !(kill(w->target.pid, 0) && errno == ESRCH))
			continue;
		probes_remove_target(&m->probes, w->target.pid, &w->links);
		pyresolver_free(w->resolver);
		w->resolver = NULL;
		w->exited = true;
		records_forget_process(m->records, w->target.pid);
		forget_loop_threads(m, w->target.pid);
	}
}

/* ---- run -------------------------------------------------------------------------------- */

static int pidfd_open(pid_t pid)
{
	return syscall(SYS_pidfd_open, pid, 0);
}

void monitor_drain(struct monitor *m)
{
	uint64_t now;

	probes_consume(&m->probes);
	now = monitor_now_ns();		/* after the reports: none may be newer than now */
	for (size_t i = 0; i < m->n_procs; i++)
		maybe_disarm(m, m->procs[i], now);
}

enum monitor_stop monitor_run(struct monitor *m)
{
	uint64_t start = monitor_now_ns();
	uint64_t deadline = m->opt->duration_s > 0 ?
			    start + (uint64_t)(m->opt->duration_s * 1e9) : 0;
	pid_t pid = m->n_procs ? m->procs[0]->target.pid : 0;
	enum monitor_stop why = STOP_SIGNAL;
	bool told_waiting = false;
	struct pollfd fds[3];
	sigset_t mask;
	int pidfd, sfd;

	m->attached = true;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	pidfd = pidfd_open(pid);
	fds[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	fds[1] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	/* woken by reports at once; the rest waits for the drain interval */
	fds[2] = (struct pollfd){ .fd = probes_ring_fd(&m->probes), .events = POLLIN };
	for (;;) {
		uint64_t now;
		int n = poll(fds, 3, DRAIN_INTERVAL_MS);

		if (n < 0 && errno != EINTR)
			break;
		monitor_drain(m);
		if (sfd >= 0 && (fds[0].revents & POLLIN))
			break;
		if ((pidfd >= 0 && (fds[1].revents & POLLIN)) ||
		    (pidfd < 0 && kill(pid, 0) && errno == ESRCH)) {
			probes_consume(&m->probes);
			why = STOP_TARGET_EXIT;
			break;
		}
		now = monitor_now_ns();
		if (!told_waiting && !m->loop_threads && now - start >= WAITING_NOTICE_NS) {
			fprintf(stderr, "aiocopd: waiting for an asyncio event loop in PID %d\n",
				pid);
			told_waiting = true;
		}
		if (deadline && now >= deadline) {
			why = STOP_DURATION;
			break;
		}
		if (m->on_tick)
			m->on_tick(m, now);
	}
	if (sfd >= 0)
		close(sfd);
	if (pidfd >= 0)
		close(pidfd);
	return why;
}

void monitor_close(struct monitor *m)
{
	uint64_t lost = m->probes.skel ? probes_lost(&m->probes, LOST_RING_BUFFER) : 0;

	if (lost)
		fprintf(stderr, "aiocopd: %llu records lost (ring buffer full)\n",
			(unsigned long long)lost);
	/* uprobes trap in their targets even when their program does nothing: off first */
	while (m->n_procs)
		monitor_forget(m, m->procs[0]);
	probes_close(&m->probes);
	records_free(m->records);
	m->records = NULL;
	free(m->loop_tids);
	m->loop_tids = NULL;
	m->loop_threads = 0;
}
