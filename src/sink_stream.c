// SPDX-License-Identifier: GPL-2.0
/*
 * The report stream (see sink_stream.h). SIGPIPE is ignored by the commands, so a closed
 * pipe shows up here as a failed write.
 */
#include <stdlib.h>

#include "sink_stream.h"

/* After a write: a failed one means the reader went away. */
static void check_written(struct stream_sink *s)
{
	fflush(s->out);
	if (!ferror(s->out))
		return;
	s->closed = true;
	if (s->on_closed)
		s->on_closed(s->ctx);
}

static void write_group_line(void *ctx, const struct report_group *g)
{
	struct stream_sink *s = ctx;

	if (s->closed)
		return;
	group_write_line(s->out, g);
	check_written(s);
}

static void stream_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct stream_sink *s = ctx;

	if (s->closed)
		return;
	if (s->json)
		report_write_json(s->out, r);
	else if (!s->groups || groups_admit(s->groups, r, engine_now_ns(), write_group_line, s))
		report_write_text(s->out, r, s->colour);
	check_written(s);
}

void stream_sink_init(struct stream_sink *s, FILE *out, FILE *colour_of, bool json,
		      void (*on_closed)(void *ctx), void *ctx)
{
	*s = (struct stream_sink){ .out = out, .json = json, .on_closed = on_closed, .ctx = ctx };
	if (json)
		return;
	s->colour = colour_of && report_colour_wanted(colour_of);
	s->groups = calloc(1, sizeof(*s->groups));	/* NULL: reports go ungrouped */
}

struct engine_sink stream_sink(struct stream_sink *s)
{
	return (struct engine_sink){ .report = stream_report, .ctx = s };
}

void stream_sink_tick(struct stream_sink *s)
{
	if (s->groups)
		groups_flush(s->groups, engine_now_ns(), false, write_group_line, s);
}

void stream_sink_finish(struct stream_sink *s)
{
	if (!s->groups)
		return;
	groups_flush(s->groups, engine_now_ns(), true, write_group_line, s);
	groups_free(s->groups);
	free(s->groups);
	s->groups = NULL;
}
