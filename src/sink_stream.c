// SPDX-License-Identifier: GPL-2.0
/*
 * The report stream (see sink_stream.h). SIGPIPE is ignored by the commands, so a closed
 * pipe shows up here as a failed write.
 */
#include "sink_stream.h"

static void stream_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct stream_sink *s = ctx;

	if (s->closed)
		return;
	if (s->json)
		report_write_json(s->out, r);
	else
		report_write_text(s->out, r);
	if (!ferror(s->out))
		return;
	s->closed = true;
	if (s->on_closed)
		s->on_closed(s->ctx);
}

void stream_sink_init(struct stream_sink *s, FILE *out, bool json,
		      void (*on_closed)(void *ctx), void *ctx)
{
	*s = (struct stream_sink){ .out = out, .json = json, .on_closed = on_closed, .ctx = ctx };
}

struct engine_sink stream_sink(struct stream_sink *s)
{
	return (struct engine_sink){ .report = stream_report, .ctx = s };
}
