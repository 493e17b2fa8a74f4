// SPDX-License-Identifier: GPL-2.0
/*
 * The per-process summary of exec and of the live monitor. Only a handful of entry points are kept, so they live in a
 * short array kept sorted by their longest report; an entry point seen again moves up when
 * its new report is longer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "summary.h"

void summary_entry_set(struct summary_entry *e, const struct report *r)
{
	free(e->where);
	e->elapsed_ms = r->elapsed_ms;
	e->level = r->level;
	e->count = 1;
	if (r->is_task)
		snprintf(e->what, sizeof(e->what), "task '%s' coro %s", r->task_name, r->coro);
	else
		snprintf(e->what, sizeof(e->what), "callback %s", r->callback);
	e->where = strdup(report_entry_point(r));
}

/* Puts a report among the worst, longest first, if it is long enough. */
static void insert_worst(struct proc_summary *s, const struct report *r, unsigned seen_before)
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
	slot->where = NULL;
	summary_entry_set(slot, r);
	slot->count = seen_before + 1;
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

	/* the loop's lag names no callback to rank, and has no level to count under */
	if (r->slow_iteration) {
		s->slow_iterations++;
		if (r->elapsed_ms > s->worst_iteration_ms)
			s->worst_iteration_ms = r->elapsed_ms;
		return;
	}
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
	insert_worst(s, r, seen);
}

void summary_free(struct proc_summary *s)
{
	for (size_t i = 0; i < SUMMARY_WORST; i++)
		free(s->worst[i].where);
	memset(s, 0, sizeof(*s));
}

bool summary_any_slow(const struct proc_summary *s)
{
	return s->reports_by_level[LEVEL_LOW] || s->reports_by_level[LEVEL_MEDIUM] ||
	       s->reports_by_level[LEVEL_HIGH] || s->slow_iterations;
}

void summary_write_counts(FILE *out, const struct proc_summary *s)
{
	fprintf(out, "slow: %llu high, %llu medium, %llu low",
		(unsigned long long)s->reports_by_level[LEVEL_HIGH],
		(unsigned long long)s->reports_by_level[LEVEL_MEDIUM],
		(unsigned long long)s->reports_by_level[LEVEL_LOW]);
	if (s->slow_iterations)
		fprintf(out, "; %llu slow loop iteration(s), worst %.1fms",
			(unsigned long long)s->slow_iterations, s->worst_iteration_ms);
}

void summary_write_worst(FILE *out, const struct proc_summary *s, const char *indent)
{
	for (size_t k = 0; k < SUMMARY_WORST && s->worst[k].where; k++) {
		fprintf(out, "%s%ux, worst %.1fms %s: ", indent, s->worst[k].count,
			s->worst[k].elapsed_ms, severity_level_name(s->worst[k].level));
		report_put_text(out, s->worst[k].what);	/* the target's own words */
		fputs(" at ", out);
		report_put_text(out, s->worst[k].where);
		fputc('\n', out);
	}
}

int summary_exit_status(int cmd_status, uint64_t violations, int violation_status)
{
	/* a failing test suite says more than our verdict: its status is kept */
	if (cmd_status)
		return cmd_status;
	return violations ? violation_status : 0;
}
