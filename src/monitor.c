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
#include "reconstruct.h"
#include "syscall_nr.h"

#define DRAIN_INTERVAL_MS	100
#define WAITING_NOTICE_NS	1000000000ull

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

/* ---- reports ---------------------------------------------------------------------------- */

static void watched_locate(void *ctx, uint64_t code, uint64_t instr, struct py_location *loc)
{
	struct watched *w = ctx;

	pyresolver_locate(w->resolver, code, instr, loc);
}

static int watched_read_u64(void *ctx, uint64_t addr, uint64_t *val)
{
	struct watched *w = ctx;

	return procmem_read_u64(w->target.pid, addr, val);
}

static int watched_read_str(void *ctx, uint64_t obj, char *buf, size_t bufsz)
{
	struct watched *w = ctx;

	return pyresolver_read_str(w->target.pid, w->target.layout, obj, buf, bufsz);
}

/* Read from its maps once it matters, and remembered: uvloop is not unloaded. */
static bool watched_uses_uvloop(void *ctx)
{
	struct watched *w = ctx;

	if (!w->uvloop)
		w->uvloop = target_maps_file(w->target.pid, "/uvloop/loop.");
	return w->uvloop;
}

int monitor_build_report(struct monitor *m, struct watched *w, const struct event_callback *ev,
			 struct report *out)
{
	const struct recon_resolver res = {
		.locate = watched_locate,
		.read_u64 = watched_read_u64,
		.read_str = watched_read_str,
		.uses_uvloop = watched_uses_uvloop,
		.ctx = w,
		.layout = w->target.layout,
	};
	const struct recon_options opt = {
		.threshold_ms = m->opt->threshold_ms,
		.trace_depth = m->opt->trace_depth,
	};
	struct record_set set = records_take(m->records, ev);
	int ret = reconstruct_report(ev, set.recs, set.n, &res, &opt, out);

	record_set_free(&set);
	if (!ret)
		out->ts = monitor_wall_time(m, ev->h.ts_ns);
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
