// SPDX-License-Identifier: GPL-2.0
/*
 * Discovery for `aiocopd service` (see discover.h). A process is looked at when it execs,
 * and again a little later while its rule selects it but no CPython runtime is mapped yet:
 * a dynamically linked interpreter maps libpython only once its loader has run, and nothing
 * here waits for that by stopping it. The delays double from 5 ms to 1 s, so a process is
 * watched within about 1 s of its runtime appearing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "array.h"
#include "discover.h"
#include "probes.h"

#define RETRY_FIRST_MS		5
#define RETRY_MAX_MS		1000

/* A selected process with no runtime mapped yet. */
struct pending {
	pid_t pid;
	uint64_t first_ns, next_ns;
	unsigned delay_ms;
};

struct discoverer {
	struct engine *engine;
	sd_event *loop;
	struct discover_hooks hooks;
	struct pending *pending;
	size_t n_pending, cap_pending;
	sd_event_source *retry_timer;
};

static void failed(struct discoverer *d, pid_t pid, enum attach_failure why, const char *msg)
{
	if (d->hooks.failed)
		d->hooks.failed(d->hooks.ctx, pid, why, msg);
}

static struct pending *find_pending(struct discoverer *d, pid_t pid)
{
	for (size_t i = 0; i < d->n_pending; i++)
		if (d->pending[i].pid == pid)
			return &d->pending[i];
	return NULL;
}

static void drop_pending(struct discoverer *d, pid_t pid)
{
	struct pending *p = find_pending(d, pid);

	if (p)
		*p = d->pending[--d->n_pending];
}

/* The retry timer, set for the earliest pending process (off when none is). */
static void arm_retry_timer(struct discoverer *d)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < d->n_pending; i++)
		if (d->pending[i].next_ns < next)
			next = d->pending[i].next_ns;
	if (next == UINT64_MAX) {
		sd_event_source_set_enabled(d->retry_timer, SD_EVENT_OFF);
		return;
	}
	sd_event_source_set_time(d->retry_timer, next / 1000);
	sd_event_source_set_enabled(d->retry_timer, SD_EVENT_ONESHOT);
}

/* Looked at again later (true), unless it has been for long enough: it is no CPython. */
static bool look_again(struct discoverer *d, pid_t pid)
{
	uint64_t now = engine_now_ns();
	struct pending *p = find_pending(d, pid), *grown;

	if (!p) {
		if (d->n_pending >= DISCOVER_MAX_PENDING) {
			engine_log(d->engine, LOG_DEBUG, "PID %d not looked at again: %d processes "
				   "wait already", pid, DISCOVER_MAX_PENDING);
			return false;
		}
		grown = array_room_for(d->pending, &d->cap_pending, d->n_pending, sizeof(*grown));
		if (!grown)
			return false;
		d->pending = grown;
		p = &d->pending[d->n_pending++];
		*p = (struct pending){ .pid = pid, .first_ns = now, .delay_ms = RETRY_FIRST_MS };
	} else if (now - p->first_ns > DISCOVER_RETRY_FOR_MS * 1000000ull) {
		engine_log(d->engine, LOG_DEBUG, "PID %d: no CPython runtime after %d s, left alone",
			   pid, DISCOVER_RETRY_FOR_MS / 1000);
		return false;
	} else {
		p->delay_ms = p->delay_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->delay_ms * 2;
	}
	p->next_ns = now + p->delay_ms * 1000000ull;
	return true;
}

static enum attach_failure failure_of(int target_error)
{
	switch (target_error) {
	case TARGET_NO_PROCESS:
		return ATTACH_GONE;
	case TARGET_UNSUPPORTED:
		return ATTACH_UNSUPPORTED;
	case TARGET_NO_ACCESS:
		return ATTACH_NO_ACCESS;
	case TARGET_NOT_PYTHON:
		return ATTACH_NOT_PYTHON;
	default:
		return ATTACH_PROBE;
	}
}

/* A watch that failed: the process went meanwhile, or a probe could not attach. */
static enum attach_failure watch_failure(pid_t pid)
{
	return proc_alive(pid) ? ATTACH_PROBE : ATTACH_GONE;
}

static void watch(struct discoverer *d, const struct py_target *t, const void *rule)
{
	struct watched *w;
	char err[512] = "";

	w = engine_watch(d->engine, t, 0, err, sizeof(err));
	if (!w) {
		failed(d, t->pid, watch_failure(t->pid), err);
		return;
	}
	/* its forks are watched too, and its next exec is seen; nothing is held */
	if (probes_follow(engine_probes(d->engine), t->pid, FAMILY_UNHELD))
		engine_log(d->engine, LOG_WARNING, "PID %d: its forks will not be watched: %s",
			   t->pid, strerror(errno));
	if (d->hooks.watched)
		d->hooks.watched(d->hooks.ctx, w, rule);
}

/* Whether pid is to be watched, and if it can be now; fresh: it just exec'd. */
static void look_at(struct discoverer *d, pid_t pid, bool fresh)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	struct proc_facts *f = malloc(sizeof(*f));
	struct py_target *t = malloc(sizeof(*t));
	bool again = false;
	const void *rule;
	char err[512] = "";
	int ret;

	if (!f || !t || pid == getpid() || engine_find(d->engine, pid))
		goto out;
	proc_facts_init(f, pid);
	rule = d->hooks.select ? d->hooks.select(d->hooks.ctx, f) : NULL;
	if (!rule)
		goto out;
	ret = -target_inspect(pid, &topts, t, err, sizeof(err));
	if (ret == TARGET_OK)
		watch(d, t, rule);
	else if (ret == TARGET_NOT_PYTHON && fresh)
		again = look_again(d, pid);
	else if (ret != TARGET_NOT_PYTHON)
		failed(d, pid, failure_of(ret), err);
out:
	if (!again)
		drop_pending(d, pid);
	free(f);
	free(t);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *ctx)
{
	struct discoverer *d = ctx;
	uint64_t now = engine_now_ns();

	/* look_at changes the array: take the due ones one at a time */
	for (size_t i = 0; i < d->n_pending;) {
		if (d->pending[i].next_ns > now) {
			i++;
			continue;
		}
		d->pending[i].next_ns = UINT64_MAX - 1;	/* not due again unless rescheduled */
		look_at(d, d->pending[i].pid, true);
		i = 0;
		now = engine_now_ns();
	}
	arm_retry_timer(d);
	return 0;
}

/* A process replaced its program: whatever it ran before, it is a new candidate. */
static void on_exec_seen(void *ctx, pid_t pid, uint64_t ts_ns)
{
	struct discoverer *d = ctx;
	struct watched *old = engine_find(d->engine, pid);

	if (old)
		engine_unwatch(d->engine, old);
	drop_pending(d, pid);
	look_at(d, pid, true);
	arm_retry_timer(d);
}

static void on_fork(void *ctx, pid_t pid, pid_t parent)
{
	struct discoverer *d = ctx;
	struct watched *p = engine_find(d->engine, parent), *child;
	char err[512] = "";

	if (!p)
		return;
	child = engine_watch_fork(d->engine, p, pid, err, sizeof(err));
	if (!child) {
		failed(d, pid, watch_failure(pid), err);
		return;
	}
	if (d->hooks.adopted)
		d->hooks.adopted(d->hooks.ctx, engine_find(d->engine, parent), child);
}

static void on_process_exit(void *ctx, pid_t pid)
{
	drop_pending(ctx, pid);
}

static void scan_one(void *ctx, pid_t pid)
{
	look_at(ctx, pid, false);
}

void discover_scan(struct discoverer *d)
{
	int ret = proc_for_each_pid(scan_one, d);

	if (ret)
		engine_log(d->engine, LOG_ERR, "cannot read /proc: %s", strerror(-ret));
}

size_t discover_pending(const struct discoverer *d)
{
	return d->n_pending;
}

int discover_open(struct discoverer **out, struct engine *e, sd_event *loop,
		  const struct discover_hooks *hooks)
{
	struct discoverer *d = calloc(1, sizeof(*d));
	struct engine_follow_hooks fh;
	int ret;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	d->engine = e;
	d->loop = loop;
	d->hooks = *hooks;
	ret = sd_event_add_time(loop, &d->retry_timer, CLOCK_MONOTONIC, UINT64_MAX, 0,
				on_retry_timer, d);
	if (ret < 0) {
		free(d);
		return ret;
	}
	sd_event_source_set_enabled(d->retry_timer, SD_EVENT_OFF);
	fh = (struct engine_follow_hooks){ .exec_seen = on_exec_seen, .fork = on_fork,
					   .exit = on_process_exit, .ctx = d };
	engine_set_follow_hooks(e, &fh);
	probes_discover_execs(engine_probes(e), true);
	*out = d;
	return 0;
}

void discover_close(struct discoverer *d)
{
	if (!d)
		return;
	probes_discover_execs(engine_probes(d->engine), false);
	probes_stop_following(engine_probes(d->engine));
	engine_set_follow_hooks(d->engine, NULL);
	sd_event_source_disable_unref(d->retry_timer);
	free(d->pending);
	free(d);
}
