// SPDX-License-Identifier: GPL-2.0
/*
 * Grouped repeats (see text_group.h). A few hundred groups at most, so a linear search.
 */
#include <stdlib.h>
#include <string.h>

#include "text_group.h"
#include "text_paths.h"

#define NS_PER_S	1000000000ull

static void what_of(const struct report *r, char *buf, size_t bufsz)
{
	if (r->is_task)
		snprintf(buf, bufsz, "coro %s", r->coro);
	else
		snprintf(buf, bufsz, "callback %s", r->callback);
}

static struct report_group *find_group(struct report_groups *gs, uint32_t pid, const char *what,
				       const char *where)
{
	for (size_t i = 0; i < gs->n; i++) {
		struct report_group *g = &gs->group[i];

		if (g->pid == pid && !strcmp(g->what, what) && !strcmp(g->where, where))
			return g;
	}
	return NULL;
}

static void say_held(struct report_group *g, uint64_t now_ns, group_line_fn line, void *ctx)
{
	if (!g->held)
		return;
	if (line)
		line(ctx, g);
	g->held = 0;
	g->held_worst_ms = 0;
	g->held_since_ns = now_ns;
}

static void drop_group(struct report_groups *gs, struct report_group *g)
{
	free(g->what);
	free(g->where);
	*g = gs->group[--gs->n];
}

/* Room for one more group: the one seen longest ago goes, its held line said first. */
static void make_room(struct report_groups *gs, uint64_t now_ns, group_line_fn line, void *ctx)
{
	struct report_group *stalest = &gs->group[0];

	for (size_t i = 1; i < gs->n; i++)
		if (gs->group[i].last_seen_ns < stalest->last_seen_ns)
			stalest = &gs->group[i];
	say_held(stalest, now_ns, line, ctx);
	drop_group(gs, stalest);
}

static struct report_group *new_group(struct report_groups *gs, uint32_t pid, const char *what,
				      const char *where, uint64_t now_ns, group_line_fn line,
				      void *ctx)
{
	struct report_group *g;

	if (gs->n == GROUP_MAX)
		make_room(gs, now_ns, line, ctx);
	g = &gs->group[gs->n];
	*g = (struct report_group){ .pid = pid, .what = strdup(what),
				    .where = strndup(where, GROUP_KEY_MAX) };
	if (!g->what || !g->where) {
		free(g->what);
		free(g->where);
		return NULL;
	}
	gs->n++;
	return g;
}

bool groups_admit(struct report_groups *gs, const struct report *r, uint64_t now_ns,
		  group_line_fn line, void *ctx)
{
	char what[2 * AIOCOPD_NAME_LEN + 32], where[GROUP_KEY_MAX + 1];
	struct report_group *g;

	what_of(r, what, sizeof(what));
	snprintf(where, sizeof(where), "%s", report_entry_point(r));
	g = find_group(gs, r->pid, what, where);
	if (!g)
		g = new_group(gs, r->pid, what, where, now_ns, line, ctx);
	if (!g)
		return true;		/* out of memory: never hide a report */
	g->last_seen_ns = now_ns;
	if (!g->shown || now_ns - g->window_start_ns >= GROUP_WINDOW_S * NS_PER_S) {
		say_held(g, now_ns, line, ctx);
		g->window_start_ns = now_ns;
		g->shown = 0;
	}
	if (g->shown < GROUP_FULL_REPORTS) {
		g->shown++;
		return true;
	}
	if (!g->held)
		g->held_since_ns = now_ns;
	g->held++;
	if (r->elapsed_ms > g->held_worst_ms)
		g->held_worst_ms = r->elapsed_ms;
	return false;
}

void groups_flush(struct report_groups *gs, uint64_t now_ns, bool all, group_line_fn line,
		  void *ctx)
{
	for (size_t i = 0; i < gs->n; i++) {
		struct report_group *g = &gs->group[i];

		if (all || now_ns - g->held_since_ns >= GROUP_LINE_EVERY_S * NS_PER_S)
			say_held(g, now_ns, line, ctx);
	}
}

void groups_free(struct report_groups *gs)
{
	for (size_t i = 0; i < gs->n; i++) {
		free(gs->group[i].what);
		free(gs->group[i].where);
	}
	gs->n = 0;
}

/* "path:line:function" as "base:line": the line a reader finds the full reports by. */
static void put_where(FILE *out, const char *where)
{
	size_t len = strlen(where), path_len = frame_path_len(where, len);
	const char *base = where;
	char *shown;

	for (size_t i = 0; i < path_len; i++)
		if (where[i] == '/')
			base = where + i + 1;
	if (path_len < len) {	/* drop ":function": the line is enough */
		const char *fn = strrchr(where, ':');

		len = (size_t)(fn - where);
	}
	shown = strndup(base, len - (size_t)(base - where));
	report_put_text(out, shown ? shown : "?");
	free(shown);
}

void group_write_line(FILE *out, const struct report_group *g)
{
	fprintf(out, "\xe2\x80\xa6 %llu more like this at ", (unsigned long long)g->held);
	put_where(out, g->where);
	fprintf(out, " (worst %.1fms)\n", g->held_worst_ms);
}
