// SPDX-License-Identifier: GPL-2.0
/*
 * The service's report limit (see rate_limit.h). Every report is looked up here, and up to
 * RATE_LIMIT_MAX_KEYS windows are live at once, so the windows sit in a dense array found
 * through an open-addressing hash of (service, pid, entry point). Windows are only ever
 * forgotten in rate_limit_flush, which then builds the hash again: no tombstones, and a
 * flush walks the array anyway.
 */
#include <stdlib.h>
#include <string.h>

#include "rate_limit.h"

#define RATE_SLOTS	(2 * RATE_LIMIT_MAX_KEYS)	/* a power of two: half full at most */
#define RATE_KEY_MAX	1024	/* bytes of a service name or entry point told apart */
#define NO_WINDOW	(-1)

struct window {
	char *service;
	char *entry_point;
	pid_t pid;
	uint64_t hash;
	uint64_t start_ns;		/* the first report of this minute */
	double start_wall;
	unsigned written;
	uint64_t held;
	/* a minute that admit found over: its summary is told at the next flush */
	uint64_t ended_held;
	double ended_wall;
};

struct rate_limit {
	unsigned per_minute;
	size_t n;
	struct window *win;		/* RATE_LIMIT_MAX_KEYS, the first n in use */
	int32_t slot[RATE_SLOTS];	/* index into win, or NO_WINDOW */
};

/* FNV-1a over the bounded key, its parts kept apart by a NUL. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t key_hash(const char *service, pid_t pid, const char *entry_point)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = hash_bytes(h, service, strnlen(service, RATE_KEY_MAX) + 1);
	h = hash_bytes(h, &pid, sizeof(pid));
	return hash_bytes(h, entry_point, strnlen(entry_point, RATE_KEY_MAX));
}

static bool same_key(const struct window *w, uint64_t hash, const char *service, pid_t pid,
		     const char *entry_point)
{
	return w->hash == hash && w->pid == pid && !strncmp(w->service, service, RATE_KEY_MAX) &&
	       !strncmp(w->entry_point, entry_point, RATE_KEY_MAX);
}

/* The slot of the key, or the free slot where it would go. */
static size_t find_slot(const struct rate_limit *rl, uint64_t hash, const char *service,
			pid_t pid, const char *entry_point)
{
	size_t i = hash & (RATE_SLOTS - 1);

	/* at most half the slots are taken: a free one always ends the probe */
	while (rl->slot[i] != NO_WINDOW &&
	       !same_key(&rl->win[rl->slot[i]], hash, service, pid, entry_point))
		i = (i + 1) & (RATE_SLOTS - 1);
	return i;
}

static void rebuild_slots(struct rate_limit *rl)
{
	for (size_t i = 0; i < RATE_SLOTS; i++)
		rl->slot[i] = NO_WINDOW;
	for (size_t k = 0; k < rl->n; k++) {
		size_t i = rl->win[k].hash & (RATE_SLOTS - 1);

		while (rl->slot[i] != NO_WINDOW)
			i = (i + 1) & (RATE_SLOTS - 1);
		rl->slot[i] = (int32_t)k;
	}
}

struct rate_limit *rate_limit_new(unsigned per_minute)
{
	struct rate_limit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return NULL;
	rl->win = calloc(RATE_LIMIT_MAX_KEYS, sizeof(*rl->win));
	if (!rl->win) {
		free(rl);
		return NULL;
	}
	rl->per_minute = per_minute;
	rebuild_slots(rl);
	return rl;
}

static void window_free(struct window *w)
{
	free(w->service);
	free(w->entry_point);
}

void rate_limit_free(struct rate_limit *rl)
{
	if (!rl)
		return;
	for (size_t i = 0; i < rl->n; i++)
		window_free(&rl->win[i]);
	free(rl->win);
	free(rl);
}

/* At a reload: windows keep what they counted, the new limit applies from the next report. */
void rate_limit_set(struct rate_limit *rl, unsigned per_minute)
{
	rl->per_minute = per_minute;
}

static bool window_over(const struct window *w, uint64_t now_ns)
{
	return now_ns >= w->start_ns && now_ns - w->start_ns >= RATE_LIMIT_WINDOW_NS;
}

static void window_start(struct window *w, uint64_t now_ns, double wall)
{
	w->start_ns = now_ns;
	w->start_wall = wall;
	w->written = 0;
	w->held = 0;
}

static struct window *new_window(struct rate_limit *rl, size_t slot, uint64_t hash,
				 const char *service, pid_t pid, const char *entry_point)
{
	struct window *w = &rl->win[rl->n];

	*w = (struct window){ .service = strndup(service, RATE_KEY_MAX),
			      .entry_point = strndup(entry_point, RATE_KEY_MAX),
			      .pid = pid, .hash = hash };
	if (!w->service || !w->entry_point) {
		window_free(w);
		return NULL;
	}
	rl->slot[slot] = (int32_t)rl->n++;
	return w;
}

enum rate_verdict rate_limit_admit(struct rate_limit *rl, const char *service, pid_t pid,
				   const char *entry_point, uint64_t now_ns, double wall)
{
	uint64_t hash;
	struct window *w;
	size_t slot;

	if (!rl->per_minute)
		return RATE_WRITE;
	hash = key_hash(service, pid, entry_point);
	slot = find_slot(rl, hash, service, pid, entry_point);
	if (rl->slot[slot] != NO_WINDOW) {
		w = &rl->win[rl->slot[slot]];
	} else {
		if (rl->n == RATE_LIMIT_MAX_KEYS)
			return RATE_UNTRACKED;
		w = new_window(rl, slot, hash, service, pid, entry_point);
		if (!w)
			return RATE_UNTRACKED;	/* out of memory: never hide a report */
		window_start(w, now_ns, wall);
	}
	if (window_over(w, now_ns)) {
		/* no flush since its minute ended: its count waits for the next one */
		if (w->held && !w->ended_held)
			w->ended_wall = w->start_wall;
		w->ended_held += w->held;
		window_start(w, now_ns, wall);
	}
	if (w->written < rl->per_minute) {
		w->written++;
		return RATE_WRITE;
	}
	w->held++;
	return RATE_SUPPRESS;
}

static void tell(const struct window *w, uint64_t count, double wall, double window_s,
		 void (*fn)(void *ctx, const struct suppressed *s), void *ctx)
{
	struct suppressed s = { .service = w->service, .pid = w->pid,
				.entry_point = w->entry_point, .count = count, .ts = wall,
				.window_s = window_s };

	if (count && fn)
		fn(ctx, &s);
}

/*
 * A window that is told before its minute is over (its process exited, the service stops)
 * says how long it really covered.
 */
static double covered_s(const struct window *w, uint64_t now_ns)
{
	if (window_over(w, now_ns) || now_ns < w->start_ns)
		return RATE_LIMIT_WINDOW_NS / 1e9;
	return (now_ns - w->start_ns) / 1e9;
}

void rate_limit_flush(struct rate_limit *rl, uint64_t now_ns, bool all, pid_t pid,
		      void (*fn)(void *ctx, const struct suppressed *s), void *ctx)
{
	size_t before = rl->n;

	for (size_t i = 0; i < rl->n;) {
		struct window *w = &rl->win[i];

		if (pid > 0 && w->pid != pid) {
			i++;
			continue;
		}
		tell(w, w->ended_held, w->ended_wall, RATE_LIMIT_WINDOW_NS / 1e9, fn, ctx);
		w->ended_held = 0;
		if (!all && !window_over(w, now_ns)) {
			i++;
			continue;
		}
		tell(w, w->held, w->start_wall, covered_s(w, now_ns), fn, ctx);
		window_free(w);
		*w = rl->win[--rl->n];	/* the last one moves here: look at i again */
	}
	if (rl->n != before)
		rebuild_slots(rl);
}
