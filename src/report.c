// SPDX-License-Identifier: GPL-2.0
/*
 * Rendering of reports. JSON goes through json-c so every string is escaped correctly,
 * whatever bytes the target's names contain; text follows aiocop's quick-start layout.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "text_paths.h"

void report_free(struct report *r)
{
	for (size_t i = 0; i < r->n_events; i++) {
		free(r->events[i].entry_point);
		free(r->events[i].trace);
	}
	free(r->events);
	r->events = NULL;
	r->n_events = 0;
	for (size_t i = 0; i < r->n_cpu; i++) {
		free(r->cpu[i].entry_point);
		free(r->cpu[i].trace);
	}
	r->n_cpu = 0;
	for (size_t i = 0; i < r->n_top; i++)
		free(r->top[i].entry_point);
	r->n_top = 0;
}

/*
 * Where a report points a reader: the heaviest blocking event (weight, then duration), or
 * the most sampled stack of a CPU-bound callback, or the callback's own name.
 */
const char *report_entry_point(const struct report *r)
{
	const struct report_event *best = NULL;

	for (size_t i = 0; i < r->n_events; i++) {
		const struct report_event *e = &r->events[i];

		if (!e->entry_point)
			continue;
		if (!best || e->severity > best->severity ||
		    (e->severity == best->severity && e->duration_ms > best->duration_ms))
			best = e;
	}
	if (best)
		return best->entry_point;
	if (r->n_cpu && r->cpu[0].entry_point)
		return r->cpu[0].entry_point;
	return r->is_task ? r->coro : r->callback;
}

/*
 * Where the callback's time went (SPEC section 3, reason): a collection that took half of
 * it, whatever else happened; else its blocking operations; else the larger of its on-CPU
 * and off-CPU time, and off CPU, the larger of waiting for a CPU and sleeping in nothing
 * named (page faults, a lock no probe sees).
 */
const char *report_reason(const struct report *r)
{
	double asleep = r->offcpu_ms - r->preempted_ms;

	if (r->elapsed_ms > 0 && r->gc_ms * 2 >= r->elapsed_ms)
		return "gc";
	if (r->n_events)
		return "io_blocking";
	if (r->oncpu_ms >= r->offcpu_ms)
		return "cpu_blocking";
	return r->preempted_ms >= asleep ? "preempted" : "waiting";
}

/* json-c prints doubles with many digits; keep what a human would: 0.1 ms or 1 µs. */
struct json_object *json_rounded(double v, int decimals)
{
	char buf[64];
	size_t n;

	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	/* 61.200 -> 61.2 and 30.000 -> 30, as a person would write them */
	n = strlen(buf);
	if (strchr(buf, '.')) {
		while (n > 1 && buf[n - 1] == '0')
			buf[--n] = 0;
		if (buf[n - 1] == '.')
			buf[--n] = 0;
	}
	return json_object_new_double_s(strtod(buf, NULL), buf);
}

/*
 * json-c copies string bytes as they are, and a JSON text must be UTF-8. Names come from
 * the target (CPython keeps non-ASCII one-byte strings as Latin-1; bytes objects hold
 * anything), so keep well-formed UTF-8 and replace each byte of anything else by U+FFFD.
 */
struct json_object *json_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;
	struct json_object *j;
	char *buf = malloc(3 * n + 1);

	if (!buf)
		return json_object_new_string("");
	for (size_t i = 0; i < n;) {
		size_t len = p[i] < 0x80 ? 1 : p[i] >= 0xc2 && p[i] <= 0xdf ? 2 :
			     p[i] >= 0xe0 && p[i] <= 0xef ? 3 : p[i] >= 0xf0 && p[i] <= 0xf4 ? 4 : 0;
		bool ok = len && i + len <= n;

		for (size_t k = 1; ok && k < len; k++)
			ok = (p[i + k] & 0xc0) == 0x80;
		if (ok && len == 3)	/* no overlongs, no surrogates */
			ok = !(p[i] == 0xe0 && p[i + 1] < 0xa0) && !(p[i] == 0xed && p[i + 1] >= 0xa0);
		if (ok && len == 4)	/* no overlongs, nothing past U+10FFFF */
			ok = !(p[i] == 0xf0 && p[i + 1] < 0x90) && !(p[i] == 0xf4 && p[i + 1] >= 0x90);
		if (ok) {
			memcpy(buf + o, p + i, len);
			o += len;
			i += len;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		}
	}
	j = json_object_new_string_len(buf, (int)o);
	free(buf);
	return j;
}

static struct json_object *event_to_json(const struct report_event *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "event", json_text(e->event));
	json_object_object_add(o, "category", json_object_new_string(category_name(e->category)));
	json_object_object_add(o, "severity", json_object_new_int(e->severity));
	json_object_object_add(o, "duration_ms", json_rounded(e->duration_ms, 3));
	json_object_object_add(o, "syscall", e->syscall ? json_object_new_string(e->syscall) : NULL);
	json_object_object_add(o, "entry_point",
			       json_text(e->entry_point ? e->entry_point : ""));
	json_object_object_add(o, "trace", json_text(e->trace ? e->trace : ""));
	json_object_object_add(o, "trace_truncated", json_object_new_boolean(e->trace_cut));
	return o;
}

static struct json_object *cpu_to_json(const struct report *r)
{
	struct json_object *list = json_object_new_array();

	for (size_t i = 0; i < r->n_cpu; i++) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "trace", json_text(r->cpu[i].trace ? r->cpu[i].trace : ""));
		json_object_object_add(o, "entry_point",
				       json_text(r->cpu[i].entry_point ? r->cpu[i].entry_point : ""));
		json_object_object_add(o, "trace_truncated",
				       json_object_new_boolean(r->cpu[i].trace_cut));
		json_object_object_add(o, "count", json_object_new_int(r->cpu[i].count));
		json_object_array_add(list, o);
	}
	return list;
}

static struct json_object *task_to_json(bool is_task, const char *name, const char *coro)
{
	struct json_object *task;

	if (!is_task)
		return NULL;
	task = json_object_new_object();
	json_object_object_add(task, "name", json_text(name));
	json_object_object_add(task, "coro", json_text(coro));
	return task;
}

/* What a slow_task and a slow_iteration object both begin with. */
static void add_common_keys(struct json_object *o, const char *type, const struct report *r)
{
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "ts", json_rounded(r->ts, 6));
	json_object_object_add(o, "pid", json_object_new_int(r->pid));
	json_object_object_add(o, "tid", json_object_new_int(r->tid));
	if (r->ns_pid)
		json_object_object_add(o, "ns_pid", json_object_new_int(r->ns_pid));
	if (r->ns_tid)
		json_object_object_add(o, "ns_tid", json_object_new_int(r->ns_tid));
	json_object_object_add(o, "elapsed_ms", json_rounded(r->elapsed_ms, 3));
	json_object_object_add(o, "threshold_ms", json_rounded(r->threshold_ms, 3));
}

/* SPEC section 3: a loop iteration slow with none of its callbacks slow (the loop's lag). */
static struct json_object *iteration_to_json(const struct report *r)
{
	struct json_object *o = json_object_new_object(), *top = json_object_new_array();

	add_common_keys(o, "slow_iteration", r);
	json_object_object_add(o, "callbacks", json_object_new_int64((int64_t)r->callbacks));
	for (size_t i = 0; i < r->n_top; i++) {
		const struct report_top *t = &r->top[i];
		struct json_object *c = json_object_new_object();

		json_object_object_add(c, "task", task_to_json(t->is_task, t->task_name, t->coro));
		json_object_object_add(c, "callback", json_text(t->callback));
		json_object_object_add(c, "entry_point", json_text(t->entry_point));
		json_object_object_add(c, "ms", json_rounded(t->ms, 3));
		json_object_array_add(top, c);
	}
	json_object_object_add(o, "top", top);
	return o;
}

struct json_object *report_to_json(const struct report *r)
{
	struct json_object *o, *events, *task;

	if (r->slow_iteration)
		return iteration_to_json(r);
	o = json_object_new_object();
	events = json_object_new_array();
	task = task_to_json(r->is_task, r->task_name, r->coro);

	add_common_keys(o, "slow_task", r);
	json_object_object_add(o, "exceeded_threshold", json_object_new_boolean(r->exceeded));
	json_object_object_add(o, "severity_score", json_object_new_int(r->score));
	json_object_object_add(o, "severity_level",
			       json_object_new_string(severity_level_name(r->level)));
	json_object_object_add(o, "reason", json_object_new_string(report_reason(r)));
	json_object_object_add(o, "on_cpu_ms", json_rounded(r->oncpu_ms, 3));
	json_object_object_add(o, "off_cpu_ms", json_rounded(r->offcpu_ms, 3));
	json_object_object_add(o, "gc_ms", json_rounded(r->gc_ms, 3));
	json_object_object_add(o, "task", task);
	json_object_object_add(o, "callback", json_text(r->callback));
	json_object_object_add(o, "attribution",
			       json_object_new_string(r->by_iteration ? "iteration" : "callback"));
	for (size_t i = 0; i < r->n_events; i++)
		json_object_array_add(events, event_to_json(&r->events[i]));
	json_object_object_add(o, "blocking_events", events);
	json_object_object_add(o, "omitted_operations", json_object_new_int64((int64_t)r->omitted));
	json_object_object_add(o, "omitted_ms", json_rounded(r->omitted_ms, 3));
	json_object_object_add(o, "cpu_samples", cpu_to_json(r));
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

/* Length of the well-formed UTF-8 sequence at s (1 to 4), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s)
{
	size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;

	if (!n || s[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Writes a string from the target for a terminal: names, paths and arguments are the
 * target's to choose, so control characters (a newline that forges a report, ESC and OSC
 * that recolour the terminal or set its title, BEL), C1 controls and bytes that are not
 * UTF-8 are written as escapes, and so is the backslash that starts them.
 */
void report_put_text(FILE *out, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	while (s && *s) {
		size_t n = *s < 0x80 ? 1 : utf8_sequence(s);

		if (*s == '\\') {
			fputs("\\\\", out);
		} else if (*s < 0x20 || *s == 0x7f || !n) {
			fprintf(out, "\\x%02x", *s);
			n = 1;
		} else if (n == 2 && s[0] == 0xc2 && s[1] < 0xa0) {
			fprintf(out, "\\u%04x", s[1]);	/* U+0080 to U+009F */
		} else {
			fwrite(s, 1, n, out);
		}
		s += n;
	}
}

/* Writes one frame with its path as short as the block allows. */
static void put_frame(FILE *out, const struct path_set *paths, const char *frame, size_t len)
{
	size_t path_len = frame_path_len(frame, len);
	size_t from = path_set_short_start(paths, frame, path_len);
	char *copy = strndup(frame + from, len - from);

	report_put_text(out, copy ? copy : "?");
	free(copy);
}

static void put_short_frame(FILE *out, const struct path_set *paths, const char *frame)
{
	put_frame(out, paths, frame ? frame : "?", frame ? strlen(frame) : 1);
}

/* A stack's frames for text, every one --trace-depth kept, and whether it went on past them. */
static void put_trace(FILE *out, const struct path_set *paths, const char *trace, bool cut)
{
	const char *p = trace;

	if (!trace || !*trace)
		return;
	fputs("      ", out);
	while (p && *p) {
		const char *sep = strstr(p, " <- ");

		put_frame(out, paths, p, sep ? (size_t)(sep - p) : strlen(p));
		if (sep)
			fputs(" <- ", out);
		p = sep ? sep + 4 : NULL;
	}
	if (cut)
		fputs("  [stack cut: deeper than shown]", out);
	fputc('\n', out);
}

/* Every file a report names, so that each is shown by its shortest unambiguous suffix. */
static void collect_paths(const struct report *r, struct path_set *paths)
{
	memset(paths, 0, sizeof(*paths));
	for (size_t i = 0; i < r->n_events; i++) {
		const struct report_event *e = &r->events[i];

		path_set_add_trace(paths, e->trace);
		path_set_add_trace(paths, e->entry_point);
	}
	for (size_t i = 0; i < r->n_cpu; i++) {
		path_set_add_trace(paths, r->cpu[i].trace);
		path_set_add_trace(paths, r->cpu[i].entry_point);
	}
	for (size_t i = 0; i < r->n_top; i++)
		path_set_add_trace(paths, r->top[i].entry_point);
}

bool report_colour_wanted(FILE *out)
{
	const char *no_colour = getenv("NO_COLOR");

	/* no-color.org: set and not empty means no colour */
	if (no_colour && *no_colour)
		return false;
	return isatty(fileno(out));
}

/* ANSI SGR sequences of a level; low is left in the terminal's own colour. */
static const char *level_colour(enum severity_level level)
{
	switch (level) {
	case LEVEL_HIGH:
		return "\033[1;31m";	/* bold red */
	case LEVEL_MEDIUM:
		return "\033[33m";	/* yellow */
	default:
		return "";
	}
}

#define COLOUR_RESET	"\033[0m"

/* The ids a target in a container sees, after the host's: "(pid 2 tid 2 in its namespace)". */
static void write_ns_ids(FILE *out, const struct report *r)
{
	if (!r->ns_pid && !r->ns_tid)
		return;
	fputs(" (", out);
	if (r->ns_pid)
		fprintf(out, "pid %u%s", r->ns_pid, r->ns_tid ? " " : "");
	if (r->ns_tid)
		fprintf(out, "tid %u", r->ns_tid);
	fputs(" in its namespace)", out);
}

/* " task 'name' coro qualname", or " callback qualname". */
static void put_who(FILE *out, bool is_task, const char *task_name, const char *coro,
		    const char *callback)
{
	if (is_task) {
		fputs(" task '", out);
		report_put_text(out, task_name);
		fputs("' coro ", out);
		report_put_text(out, coro);
	} else {
		fputs(" callback ", out);
		report_put_text(out, callback);
	}
}

/* The loop's lag: how long, how many callbacks shared it, and those that took most of it. */
static void write_iteration_text(FILE *out, const struct report *r,
				 const struct path_set *paths)
{
	fprintf(out, "SLOW LOOP ITERATION: %.1fms  (threshold %gms)  pid %u tid %u", r->elapsed_ms,
		r->threshold_ms, r->pid, r->tid);
	write_ns_ids(out, r);
	fprintf(out, "\n  %zu callback(s) seen, none slow by itself; most of the time:\n",
		r->callbacks);
	for (size_t i = 0; i < r->n_top; i++) {
		const struct report_top *t = &r->top[i];

		fputs("  -", out);
		put_who(out, t->is_task, t->task_name, t->coro, t->callback);
		fprintf(out, "  %s%.1fms  at ", t->timed ? "" : "~", t->ms);
		put_short_frame(out, paths, t->entry_point);
		fputc('\n', out);
	}
	fputc('\n', out);
	fflush(out);
}

void report_write_text(FILE *out, const struct report *r, bool colour)
{
	const char *what = r->is_task ? "TASK" : "CALLBACK";
	const char *on = colour ? level_colour(r->level) : "";
	struct path_set *paths = malloc(sizeof(*paths));

	if (!paths)
		return;
	collect_paths(r, paths);
	if (r->slow_iteration) {
		write_iteration_text(out, r, paths);
		free(paths);
		return;
	}
	fputs(on, out);
	if (r->exceeded)
		fprintf(out, "SLOW %s DETECTED: %.1fms  (threshold %gms)", what, r->elapsed_ms,
			r->threshold_ms);
	else
		fprintf(out, "BLOCKING %s: %.1fms  (under threshold %gms)", what, r->elapsed_ms,
			r->threshold_ms);
	fprintf(out, "  pid %u tid %u", r->pid, r->tid);
	write_ns_ids(out, r);
	fputc(' ', out);
	put_who(out, r->is_task, r->task_name, r->coro, r->callback);
	if (*on)
		fputs(COLOUR_RESET, out);
	fputc('\n', out);
	fprintf(out, "  Severity: %s%s%s (score %d)  reason: %s  on-cpu %.1fms  off-cpu %.1fms",
		on, severity_level_name(r->level), *on ? COLOUR_RESET : "", r->score,
		report_reason(r), r->oncpu_ms, r->offcpu_ms);
	if (r->gc_ms > 0)
		fprintf(out, "  gc %.1fms", r->gc_ms);
	fputc('\n', out);
	if (r->by_iteration)
		fprintf(out, "  Attribution: the whole loop iteration (callbacks are probed "
			"one by one from now on)\n");
	fprintf(out, "  Blocking events: %zu", r->n_events);
	if (r->omitted)
		fprintf(out, "  (and %llu more operation(s), %.1fms, not itemised: "
			"over the per-callback limit)", (unsigned long long)r->omitted, r->omitted_ms);
	fputc('\n', out);
	for (size_t i = 0; i < r->n_events; i++) {
		const struct report_event *e = &r->events[i];

		fputs("  - ", out);
		report_put_text(out, e->event);
		fprintf(out, "  [%s, %.1fms]  at ", category_name(e->category), e->duration_ms);
		put_short_frame(out, paths, e->entry_point);
		fputc('\n', out);
		put_trace(out, paths, e->trace, e->trace_cut);
	}
	if (r->n_cpu) {
		fprintf(out, "  CPU samples: %u\n", r->cpu_samples);
		for (size_t i = 0; i < r->n_cpu && i < 3; i++) {
			const struct report_cpu_stack *c = &r->cpu[i];

			fprintf(out, "  - %u sample(s)  at ", c->count);
			put_short_frame(out, paths, c->entry_point);
			fputc('\n', out);
			put_trace(out, paths, c->trace, c->trace_cut);
		}
	}
	fputc('\n', out);
	fflush(out);
	free(paths);
}
