// SPDX-License-Identifier: GPL-2.0
/*
 * Process following (see follow.h). A process is held twice on its way in: stopped by BPF
 * at its exec, continued once its entry point is probed, stopped again by that probe when
 * the dynamic loader is done, and continued once it is watched or known not to be CPython.
 * Every hold ends in this file, and follow_release_all ends those still open.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <bpf/libbpf.h>

#include "array.h"
#include "elf_file.h"
#include "follow.h"
#include "probes.h"

/* A process stopped at exec or at its entry point's probe, until we looked at it. */
struct held {
	pid_t pid;
	uint64_t exec_ns;		/* when BPF stopped it at its exec */
	struct ulink *entry_probe;
};

struct follower {
	struct engine *engine;
	struct follow_hooks hooks;
	struct held *held;		/* grows as needed; few are held at once */
	size_t n_held, cap_held;
};

static struct held *find_held(struct follower *f, pid_t pid)
{
	for (size_t i = 0; i < f->n_held; i++)
		if (f->held[i].pid == pid)
			return &f->held[i];
	return NULL;
}

static struct held *add_held(struct follower *f, pid_t pid, uint64_t exec_ns)
{
	struct held *h = find_held(f, pid), *grown;

	if (h)
		return h;
	grown = array_room_for(f->held, &f->cap_held, f->n_held, sizeof(*grown));
	if (!grown)
		return NULL;
	f->held = grown;
	h = &f->held[f->n_held++];
	*h = (struct held){ .pid = pid, .exec_ns = exec_ns };
	return h;
}

static void drop_held(struct follower *f, struct held *h)
{
	probes_release_stop(engine_probes(f->engine), h->entry_probe);
	*h = f->held[--f->n_held];
}

static void decided(struct follower *f, pid_t pid, bool watched, const char *why)
{
	if (f->hooks.decided)
		f->hooks.decided(f->hooks.ctx, pid, watched, why);
}

/* The hold is over for good: continue the process, say how long it waited (-vv). */
static void release(struct follower *f, struct held *h)
{
	uint64_t held_ns = engine_now_ns() - h->exec_ns;

	probes_continue(engine_probes(f->engine), h->pid);
	engine_log(f->engine, LOG_DEBUG, "PID %d released %.1f ms after its exec", h->pid,
		   held_ns / 1e6);
	drop_held(f, h);
}

/* Looked at for good: it goes on (h NULL: we lost track of its hold), and who asked hears. */
static void let_go(struct follower *f, struct held *h, pid_t pid, bool watched, const char *why)
{
	if (h)
		release(f, h);
	else
		probes_continue(engine_probes(f->engine), pid);
	decided(f, pid, watched, why);
}

/* Just exec'd, stopped by BPF: probe its entry point, then let the loader run. */
static void on_exec(void *ctx, pid_t pid, uint64_t ts_ns)
{
	struct follower *f = ctx;
	struct watched *old = engine_find(f->engine, pid);
	struct elf_file *ef = NULL;
	uint64_t offset;
	struct held *h;
	char exe[64];

	if (old)
		engine_unwatch(f->engine, old);	/* a Python process that exec'd something else */
	h = add_held(f, pid, ts_ns);
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	if (h && elf_file_open(exe, &ef) == 0 && elf_file_entry_offset(ef, &offset) == 0) {
		probes_release_stop(engine_probes(f->engine), h->entry_probe);
		h->entry_probe = probes_stop_at_entry(engine_probes(f->engine), pid, exe, offset);
	}
	elf_file_close(ef);
	if (h && h->entry_probe) {
		/* to its entry point, where the probe stops it again */
		probes_continue(engine_probes(f->engine), pid);
		return;
	}
	engine_log(f->engine, LOG_INFO, "cannot probe the entry point of PID %d: it runs "
		   "unwatched", pid);
	let_go(f, h, pid, false, "its new program's entry point cannot be probed");
}

/* At its entry point, libraries mapped: attach if it is a CPython we want, then let it go. */
static void on_entry(void *ctx, pid_t pid)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	struct follower *f = ctx;
	struct held *h = find_held(f, pid);
	struct watched *w = NULL;
	struct py_target t;
	char err[512] = "";

	if (target_inspect(pid, &topts, &t, err, sizeof(err)) == 0) {
		if (!f->hooks.select || f->hooks.select(f->hooks.ctx, &t)) {
			w = engine_watch(f->engine, &t, 0, err, sizeof(err));
			if (!w)
				engine_log(f->engine, LOG_WARNING, "PID %d runs unwatched: %s", pid,
					   err);
		} else {
			snprintf(err, sizeof(err), "not selected");
		}
	} else if (t.version[0] && strstr(err, "unsupported")) {
		engine_log(f->engine, LOG_WARNING, "PID %d runs unwatched: %s", pid, err);
	}
	let_go(f, h, pid, w != NULL, err);
}

/* A watched process forked: the child runs the same interpreter at the same addresses. */
static void on_fork(void *ctx, pid_t pid, pid_t parent)
{
	struct follower *f = ctx;
	struct watched *p = engine_find(f->engine, parent);
	char err[512];

	if (p && !engine_watch_fork(f->engine, p, pid, err, sizeof(err)))
		engine_log(f->engine, LOG_INFO, "PID %d (fork of %d) runs unwatched: %s", pid,
			   parent, err);
}

/* A followed process is gone: whatever held it ended with it. */
static void on_process_exit(void *ctx, pid_t pid)
{
	struct follower *f = ctx;
	struct held *h = find_held(f, pid);

	if (h)
		drop_held(f, h);
}

int follow_open(struct follower **out, struct engine *e, const struct follow_hooks *fh)
{
	struct follower *f = calloc(1, sizeof(*f));
	struct engine_follow_hooks hooks;

	if (!f)
		return -ENOMEM;
	f->engine = e;
	if (fh)
		f->hooks = *fh;
	hooks = (struct engine_follow_hooks){ .exec = on_exec, .entry = on_entry,
					      .fork = on_fork, .exit = on_process_exit, .ctx = f };
	engine_set_follow_hooks(e, &hooks);
	*out = f;
	return 0;
}

int follow_family(struct follower *f, pid_t pid)
{
	return probes_follow(engine_probes(f->engine), pid, FAMILY_MEMBER);
}

int follow_execs(struct follower *f, pid_t pid)
{
	return probes_follow(engine_probes(f->engine), pid, FAMILY_EXECS_ONLY);
}

void follow_release_all(struct follower *f)
{
	if (!f)
		return;
	/* nothing is stopped from now on; what the ring still tells is heard; then all go */
	probes_stop_following(engine_probes(f->engine));
	engine_drain(f->engine);
	while (f->n_held)
		release(f, &f->held[0]);
}

void follow_close(struct follower *f)
{
	if (!f)
		return;
	follow_release_all(f);
	engine_set_follow_hooks(f->engine, NULL);
	free(f->held);
	free(f);
}
