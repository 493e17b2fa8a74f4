// SPDX-License-Identifier: GPL-2.0
/*
 * Rendering of reports. JSON goes through json-c so every string is escaped correctly,
 * whatever bytes the target's names contain; text follows aiocop's quick-start layout.
 */
#include <stdlib.h>
#include <string.h>

#include "report.h"

void report_free(struct report *r)
{
	for (size_t i = 0; i < r->n_events; i++) {
		free(r->events[i].entry_point);
		free(r->events[i].trace);
		free(r->events[i].trace_short);
	}
	free(r->events);
	r->events = NULL;
	r->n_events = 0;
}

const char *report_reason(const struct report *r)
{
	return r->n_events ? "io_blocking" : "cpu_blocking";
}

/* json-c prints doubles with many digits; keep what a human would: 0.1 ms or 1 µs. */
static struct json_object *rounded(double v, int decimals)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(strtod(buf, NULL), buf);
}

static struct json_object *event_to_json(const struct report_event *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_object_new_string(e->event));
	json_object_object_add(o, "category", json_object_new_string(category_name(e->category)));
	json_object_object_add(o, "severity", json_object_new_int(e->severity));
	json_object_object_add(o, "duration_ms", rounded(e->duration_ms, 3));
	json_object_object_add(o, "syscall", e->syscall ? json_object_new_string(e->syscall) : NULL);
	json_object_object_add(o, "entry_point",
			       json_object_new_string(e->entry_point ? e->entry_point : ""));
	json_object_object_add(o, "trace", json_object_new_string(e->trace ? e->trace : ""));
	return o;
}

struct json_object *report_to_json(const struct report *r)
{
	struct json_object *o = json_object_new_object();
	struct json_object *events = json_object_new_array();
	struct json_object *task = NULL;

	json_object_object_add(o, "type", json_object_new_string("slow_task"));
	json_object_object_add(o, "ts", rounded(r->ts, 6));
	json_object_object_add(o, "pid", json_object_new_int(r->pid));
	json_object_object_add(o, "tid", json_object_new_int(r->tid));
	json_object_object_add(o, "elapsed_ms", rounded(r->elapsed_ms, 3));
	json_object_object_add(o, "threshold_ms", rounded(r->threshold_ms, 3));
	json_object_object_add(o, "exceeded_threshold", json_object_new_boolean(r->exceeded));
	json_object_object_add(o, "severity_score", json_object_new_int(r->score));
	json_object_object_add(o, "severity_level",
			       json_object_new_string(severity_level_name(r->level)));
	json_object_object_add(o, "reason", json_object_new_string(report_reason(r)));
	json_object_object_add(o, "on_cpu_ms", rounded(r->oncpu_ms, 3));
	json_object_object_add(o, "off_cpu_ms", rounded(r->offcpu_ms, 3));
	if (r->is_task) {
		task = json_object_new_object();
		json_object_object_add(task, "name", json_object_new_string(r->task_name));
		json_object_object_add(task, "coro", json_object_new_string(r->coro));
	}
	json_object_object_add(o, "task", task);
	json_object_object_add(o, "callback", json_object_new_string(r->callback));
	for (size_t i = 0; i < r->n_events; i++)
		json_object_array_add(events, event_to_json(&r->events[i]));
	json_object_object_add(o, "blocking_events", events);
	return o;
}

void report_write_json(FILE *out, const struct report *r)
{
	struct json_object *o = report_to_json(r);

	fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	fflush(out);
}

void report_write_text(FILE *out, const struct report *r)
{
	const char *what = r->is_task ? "TASK" : "CALLBACK";

	if (r->exceeded)
		fprintf(out, "SLOW %s DETECTED: %.1fms  (threshold %gms)", what, r->elapsed_ms,
			r->threshold_ms);
	else
		fprintf(out, "BLOCKING %s: %.1fms  (under threshold %gms)", what, r->elapsed_ms,
			r->threshold_ms);
	fprintf(out, "  pid %u tid %u", r->pid, r->tid);
	if (r->is_task)
		fprintf(out, "  task '%s' coro %s\n", r->task_name, r->coro);
	else
		fprintf(out, "  callback %s\n", r->callback);
	fprintf(out, "  Severity: %s (score %d)  reason: %s  on-cpu %.1fms  off-cpu %.1fms\n",
		severity_level_name(r->level), r->score, report_reason(r), r->oncpu_ms,
		r->offcpu_ms);
	fprintf(out, "  Blocking events: %zu\n", r->n_events);
	for (size_t i = 0; i < r->n_events; i++) {
		const struct report_event *e = &r->events[i];
		const char *ep = e->entry_point ? strrchr(e->entry_point, '/') : NULL;

		fprintf(out, "  - %s  [%s, %.1fms]  at %s\n", e->event, category_name(e->category),
			e->duration_ms, ep ? ep + 1 : (e->entry_point ? e->entry_point : "?"));
		if (e->trace_short && *e->trace_short)
			fprintf(out, "      %s\n", e->trace_short);
	}
	fputc('\n', out);
	fflush(out);
}
