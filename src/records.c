// SPDX-License-Identifier: GPL-2.0
/*
 * The record buffer. Blocking records arrive before the callback record that closes them
 * (one thread writes both, in order), so they are kept per thread under their callback's
 * sequence number and dropped when a newer callback shows up without having been reported.
 * Processes, their threads and their fd names are search trees (tsearch), so nothing has a
 * fixed number of slots to run out of; every node starts with its int key.
 */
#include <search.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "records.h"
#include "syscall_table.h"

#define FIRST_SLOTS	4	/* most callbacks that record anything record a few things */
#define NO_RECORD	SIZE_MAX

struct thread_records {
	pid_t tid;
	uint64_t cb_seq;		/* the callback the records belong to */
	size_t last_syscall;		/* index of the last syscall record, NO_RECORD if none */
	bool last_omitted;		/* the last operation record was not kept */
	struct record *recs;		/* allocated on the first record, grown to the cap */
	size_t n, cap;
	uint64_t omitted, omitted_ns;	/* operations over the cap, and their time */
};

struct fd_name {
	int fd;
	char *path;
};

struct proc_records {
	pid_t pid;
	void *threads;			/* struct thread_records by tid */
	void *fds;			/* struct fd_name by fd, from the opens seen */
	size_t n_fds;
};

struct record_buffer {
	void *procs;			/* struct proc_records by pid */
	uint64_t dropped, unreported;
};

static int cmp_key(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;

	return (x > y) - (x < y);
}

static void *lookup(void *const *root, int key)
{
	void **node = tfind(&key, root, cmp_key);

	return node ? *node : NULL;
}

/* A zeroed node of size bytes with its key set, in the tree. */
static void *insert(void **root, int key, size_t size)
{
	int *node = calloc(1, size);

	if (!node)
		return NULL;
	*node = key;
	if (!tsearch(node, root, cmp_key)) {
		free(node);
		return NULL;
	}
	return node;
}

/* ---- records ----------------------------------------------------------------------------- */

static void free_records(struct record *recs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(recs[i].ev);
		free(recs[i].fd_path);
	}
}

static void free_thread(void *node)
{
	struct thread_records *t = node;

	free_records(t->recs, t->n);
	free(t->recs);
	free(t);
}

static struct thread_records *find_thread(struct record_buffer *b, pid_t pid, pid_t tid)
{
	struct proc_records *p = lookup(&b->procs, pid);

	return p ? lookup(&p->threads, tid) : NULL;
}

/* A new callback on the thread: what the previous one left was not worth a report. */
static void start_callback(struct record_buffer *b, struct thread_records *t, uint64_t cb_seq)
{
	free_records(t->recs, t->n);
	b->unreported += t->n;
	t->n = 0;
	t->cb_seq = cb_seq;
	t->last_syscall = NO_RECORD;
	t->last_omitted = false;
	t->omitted = t->omitted_ns = 0;
}

/*
 * Fast repeats of the last syscall, folded in BPF: they are its time too, and when that
 * record was not kept they are not itemised either.
 */
static void fold(struct thread_records *t, uint32_t folded, uint64_t folded_ns)
{
	if (t->last_omitted) {
		t->omitted += folded;
		t->omitted_ns += folded_ns;
	} else if (t->last_syscall < t->n) {
		t->recs[t->last_syscall].ev->duration_ns += folded_ns;
	}
}

static int make_room(struct thread_records *t)
{
	size_t cap = t->cap ? 2 * t->cap : FIRST_SLOTS;
	struct record *recs;

	if (t->n < t->cap)
		return 0;
	if (cap > AIOCOPD_MAX_PENDING)
		cap = AIOCOPD_MAX_PENDING;
	recs = realloc(t->recs, cap * sizeof(*recs));
	if (!recs)
		return -1;
	t->recs = recs;
	t->cap = cap;
	return 0;
}

/* Most of a record is room for frames that a stack rarely fills: only its own are kept. */
static struct event_blocking *copy_record(const struct event_blocking *ev)
{
	unsigned frames = ev->n_frames < AIOCOPD_MAX_FRAMES ? ev->n_frames : AIOCOPD_MAX_FRAMES;
	size_t size = offsetof(struct event_blocking, frames) + frames * sizeof(ev->frames[0]);
	struct event_blocking *copy = malloc(size);

	if (!copy)
		return NULL;
	memcpy(copy, ev, size);
	copy->n_frames = frames;
	return copy;
}

/* ---- fd names ---------------------------------------------------------------------------- */

static bool is_open_syscall(unsigned nr)
{
	const struct syscall_info *s = syscall_info(nr);

	return s && s->kind == SYSCALL_OPEN;
}

static void free_fd_name(void *node)
{
	struct fd_name *f = node;

	free(f->path);
	free(f);
}

static void remember_fd(struct proc_records *p, int fd, const char *path, size_t pathsz)
{
	struct fd_name *f = lookup(&p->fds, fd);
	char *copy = strndup(path, pathsz);

	if (!copy)
		return;
	/* closes are not traced: a process opening ever new fd numbers must not grow us */
	if (!f && p->n_fds < RECORDS_MAX_FD_NAMES && (f = insert(&p->fds, fd, sizeof(*f))))
		p->n_fds++;
	if (!f) {
		free(copy);
		return;
	}
	free(f->path);
	f->path = copy;
}

/* What an fd names: from an open we saw, else from /proc (the fd may be gone by now). */
static char *name_fd(const struct proc_records *p, int fd)
{
	const struct fd_name *f = lookup(&p->fds, fd);
	char link[64], buf[512];
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (f)
		return strndup(f->path, AIOCOPD_STR_LEN - 1);
	snprintf(link, sizeof(link), "/proc/%d/fd/%d", p->pid, fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return strndup(buf, AIOCOPD_STR_LEN - 1);
}

/* The fd's name now, before a later close and open can reuse the number. */
static char *fd_path_then(const struct proc_records *p, const struct event_blocking *ev)
{
	/* BPF named the fd: the fd argument's, or the one a poll watched */
	if (ev->source != SOURCE_SYSCALL || !ev->fd_mode)
		return NULL;
	return name_fd(p, ev->fd);
}

/* ---- the buffer -------------------------------------------------------------------------- */

struct record_buffer *records_new(void)
{
	return calloc(1, sizeof(struct record_buffer));
}

static void free_proc(void *node)
{
	struct proc_records *p = node;

	tdestroy(p->threads, free_thread);
	tdestroy(p->fds, free_fd_name);
	free(p);
}

void records_free(struct record_buffer *b)
{
	if (!b)
		return;
	tdestroy(b->procs, free_proc);
	free(b);
}

static struct thread_records *thread_for(struct record_buffer *b, pid_t pid, pid_t tid,
					 struct proc_records **proc)
{
	struct proc_records *p = lookup(&b->procs, pid);
	struct thread_records *t;

	if (!p)
		p = insert(&b->procs, pid, sizeof(*p));
	*proc = p;
	if (!p)
		return NULL;
	t = lookup(&p->threads, tid);
	if (!t && (t = insert(&p->threads, tid, sizeof(*t))))
		t->last_syscall = NO_RECORD;
	return t;
}

/* An operation record over the cap: the report counts it, and its time, as not itemised. */
static void omit(struct thread_records *t, const struct event_blocking *ev)
{
	if (ev->source == SOURCE_SAMPLE)
		return;
	t->omitted++;
	t->omitted_ns += ev->duration_ns;
	t->last_syscall = NO_RECORD;
	t->last_omitted = true;
}

static int keep(struct thread_records *t, const struct proc_records *p,
		const struct event_blocking *ev)
{
	struct record *r;

	if (t->n >= AIOCOPD_MAX_PENDING || make_room(t)) {
		omit(t, ev);
		return -1;
	}
	r = &t->recs[t->n];
	r->ev = copy_record(ev);
	if (!r->ev) {
		omit(t, ev);
		return -1;
	}
	r->fd_path = fd_path_then(p, ev);
	if (ev->source != SOURCE_SAMPLE) {
		t->last_syscall = ev->source == SOURCE_SYSCALL ? t->n : NO_RECORD;
		t->last_omitted = false;
	}
	t->n++;
	return 0;
}

void records_add(struct record_buffer *b, const struct event_blocking *ev)
{
	struct proc_records *p;
	struct thread_records *t = thread_for(b, ev->h.pid, ev->h.tid, &p);

	if (p && ev->source == SOURCE_SYSCALL && is_open_syscall(ev->nr) && ev->ret >= 0 &&
	    ev->n_str)
		remember_fd(p, (int)ev->ret, ev->str, sizeof(ev->str));
	if (!t) {
		b->dropped++;
		return;
	}
	if (t->cb_seq != ev->cb_seq)
		start_callback(b, t, ev->cb_seq);
	if (ev->folded)
		fold(t, ev->folded, ev->folded_ns);
	if (keep(t, p, ev))
		b->dropped++;
}

struct record_set records_take(struct record_buffer *b, const struct event_callback *cb)
{
	struct thread_records *t = find_thread(b, cb->h.pid, cb->h.tid);
	struct record_set s = { NULL, 0, cb->omitted, cb->omitted_ns };

	if (!t || t->cb_seq != cb->cb_seq)
		return s;
	if (cb->folded)
		fold(t, cb->folded, cb->folded_ns);
	s.recs = t->recs;
	s.n = t->n;
	s.omitted += t->omitted;
	s.omitted_ns += t->omitted_ns;
	/* an idle thread holds no room for records */
	t->recs = NULL;
	t->n = t->cap = 0;
	t->last_syscall = NO_RECORD;
	t->last_omitted = false;
	t->omitted = t->omitted_ns = 0;
	return s;
}

void record_set_free(struct record_set *s)
{
	free_records(s->recs, s->n);
	free(s->recs);
	s->recs = NULL;
	s->n = 0;
	s->omitted = s->omitted_ns = 0;
}

void records_forget_thread(struct record_buffer *b, pid_t pid, pid_t tid)
{
	struct proc_records *p = lookup(&b->procs, pid);
	struct thread_records *t = p ? lookup(&p->threads, tid) : NULL;

	if (!t)
		return;
	b->unreported += t->n;
	tdelete(t, &p->threads, cmp_key);
	free_thread(t);
}

/* twalk visits inner nodes three times, leaves once. */
static bool first_visit(VISIT which)
{
	return which == preorder || which == leaf;
}

static void count_thread(const void *node, VISIT which, void *closure)
{
	const struct thread_records *t = *(const struct thread_records *const *)node;
	struct records_stats *st = closure;

	if (!first_visit(which))
		return;
	st->threads++;
	st->records += t->n;
	st->slots += t->cap;
}

static void count_fd(const void *node, VISIT which, void *closure)
{
	struct records_stats *st = closure;

	if (first_visit(which))
		st->fd_names++;
}

void records_forget_process(struct record_buffer *b, pid_t pid)
{
	struct proc_records *p = lookup(&b->procs, pid);
	struct records_stats gone = {};

	if (!p)
		return;
	twalk_r(p->threads, count_thread, &gone);
	b->unreported += gone.records;
	tdelete(p, &b->procs, cmp_key);
	free_proc(p);
}

static void count_proc(const void *node, VISIT which, void *closure)
{
	const struct proc_records *p = *(const struct proc_records *const *)node;
	struct records_stats *st = closure;

	if (!first_visit(which))
		return;
	st->processes++;
	twalk_r(p->threads, count_thread, st);
	twalk_r(p->fds, count_fd, st);
}

void records_stats(const struct record_buffer *b, struct records_stats *st)
{
	memset(st, 0, sizeof(*st));
	twalk_r(b->procs, count_proc, st);
	st->dropped = b->dropped;
	st->unreported = b->unreported;
}
