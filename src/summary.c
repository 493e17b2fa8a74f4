// SPDX-License-Identifier: GPL-2.0
/*
 * exec's per-process summary. Only a handful of entry points are kept, so they live in a
 * short array kept sorted by their longest report; an entry point seen again moves up when
 * its new report is longer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"

/* Puts a report among the worst, longest first, if it is long enough. */
static void insert_worst(struct proc_summary *s, const struct report *r, const char *where,
			 unsigned seen_before)
{
	struct summary_entry *last = &s->worst[SUMMARY_WORST - 1], *slot = NULL;

	for (size_t i = 0; i < SUMMARY_WORST; i++)
		if (!s->worst[i].where || r->elapsed_ms > s->worst[i].elapsed_ms) {
			slot = &s->worst[i];
			break;
		}
	if (!slot)
		return;
	free(last->where);
	memmove(slot + 1, slot, (size_t)(last - slot) * sizeof(*slot));
	slot->elapsed_ms = r->elapsed_ms;
	slot->level = r->level;
	slot->count = seen_before + 1;
	if (r->is_task)
		snprintf(slot->what, sizeof(slot->what), "task '%s' coro %s", r->task_name,
			 r->coro);
	else
		snprintf(slot->what, sizeof(slot->what), "callback %s", r->callback);
	slot->where = strdup(where);
}

/* Takes an entry point out of the ranking; the slots after it move up. */
static void remove_worst(struct proc_summary *s, size_t i)
{
	free(s->worst[i].where);
	memmove(&s->worst[i], &s->worst[i + 1], (SUMMARY_WORST - 1 - i) * sizeof(s->worst[0]));
	memset(&s->worst[SUMMARY_WORST - 1], 0, sizeof(s->worst[0]));
}

void summary_note(struct proc_summary *s, const struct report *r)
{
	const char *where = report_entry_point(r);
	unsigned seen = 0;

	if (r->exceeded)
		s->reports_by_level[r->level]++;
	for (size_t i = 0; i < SUMMARY_WORST && s->worst[i].where; i++) {
		if (strcmp(s->worst[i].where, where))
			continue;
		seen = s->worst[i].count;
		if (r->elapsed_ms <= s->worst[i].elapsed_ms) {
			s->worst[i].count++;
			return;
		}
		/* longer now: it goes back in at its new rank */
		remove_worst(s, i);
		break;
	}
	insert_worst(s, r, where, seen);
}

void summary_free(struct proc_summary *s)
{
	for (size_t i = 0; i < SUMMARY_WORST; i++)
		free(s->worst[i].where);
	memset(s, 0, sizeof(*s));
}
