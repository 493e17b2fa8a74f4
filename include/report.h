/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A finished report about one loop callback, and its two renderings: the text block users
 * know from aiocop, and one JSON object per line (SPEC sections 2 and 3).
 */
#ifndef AIOCOPD_REPORT_H
#define AIOCOPD_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include <json-c/json.h>

#include "aiocopd.h"
#include "classify.h"

struct report_event {
	char event[OP_NAME_LEN];
	enum category category;
	int severity;
	double duration_ms;
	uint64_t start_ns;		/* CLOCK_MONOTONIC, for timelines */
	const char *syscall;		/* NULL: Python level only */
	char *entry_point;		/* path:line:function */
	char *trace;			/* full frames joined by " <- " */
	bool trace_cut;			/* the stack went on past its outermost frame shown */
};

#define REPORT_MAX_CPU_STACKS	5	/* distinct sampled stacks kept per report */

/* Where a callback's CPU time went: one distinct sampled stack and how often it was seen. */
struct report_cpu_stack {
	char *entry_point;
	char *trace;
	unsigned count;
	bool trace_cut;			/* the stack went on past its outermost frame shown */
};

#define REPORT_MAX_TOP		3	/* callbacks named in a slow_iteration report */

/* One of the callbacks that took most of a slow iteration none of them made slow alone. */
struct report_top {
	bool is_task;
	char task_name[AIOCOPD_NAME_LEN + 16];
	char coro[AIOCOPD_NAME_LEN];
	char callback[AIOCOPD_NAME_LEN + 16];
	char *entry_point;
	double ms;			/* timed by BPF (armed), or estimated from samples */
	bool timed;			/* ms is its own time, not its share of the samples */
};

struct report {
	double ts;			/* wall-clock start of the callback */
	uint64_t start_ns;		/* the same start, CLOCK_MONOTONIC, for timelines */
	uint32_t pid, tid;		/* host ids, as BPF sees them */
	uint32_t ns_pid, ns_tid;	/* as the target sees them (its PID namespace); 0: the same */
	double elapsed_ms, threshold_ms;
	bool exceeded;
	bool by_iteration;		/* bounded by the loop iteration, not by Context.run */
	int score;
	enum severity_level level;
	double oncpu_ms, offcpu_ms;
	double gc_ms;			/* garbage collection inside the callback */
	double preempted_ms;		/* of offcpu_ms: runnable, waiting for a CPU */
	bool is_task;
	char task_name[AIOCOPD_NAME_LEN + 16];
	char coro[AIOCOPD_NAME_LEN];
	char callback[AIOCOPD_NAME_LEN + 16];
	struct report_event *events;
	size_t n_events;
	struct report_cpu_stack cpu[REPORT_MAX_CPU_STACKS];	/* most frequent first */
	size_t n_cpu;
	unsigned cpu_samples;		/* samples taken, over all stacks */
	uint64_t omitted;		/* operations not itemised in events (per-callback limits) */
	double omitted_ms;		/* their time */
	/* a slow_iteration report (the loop's lag): no callback of it to blame alone */
	bool slow_iteration;
	size_t callbacks;		/* callbacks seen in it */
	struct report_top top[REPORT_MAX_TOP];
	size_t n_top;
};

void report_free(struct report *r);
const char *report_reason(const struct report *r);
const char *report_entry_point(const struct report *r);
/* JSON values as reports write them: text made valid UTF-8, numbers rounded for humans. */
struct json_object *json_text(const char *s);
struct json_object *json_rounded(double v, int decimals);
struct json_object *report_to_json(const struct report *r);
void report_write_json(FILE *out, const struct report *r);
/* The text block of SPEC section 2; colour: the level's colour on the header (a terminal). */
void report_write_text(FILE *out, const struct report *r, bool colour);
/* Whether text for out is coloured: a terminal, and NO_COLOR unset or empty. */
bool report_colour_wanted(FILE *out);
/* A string from the target, escaped for a terminal (control characters, non-UTF-8 bytes). */
void report_put_text(FILE *out, const char *text);

#endif
