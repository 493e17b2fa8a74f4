/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The report stream: every report written as it comes, as a text block or one JSON line, on
 * a FILE such as stdout (the live monitor) or stderr (exec). Text is coloured by level on a
 * terminal (NO_COLOR honoured) and its repeats are grouped (text_group.h); JSON lines never
 * are. A reader that goes away (a closed pipe) is noticed on the next write and told to the
 * owner, which stops.
 */
#ifndef AIOCOPD_SINK_STREAM_H
#define AIOCOPD_SINK_STREAM_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"
#include "text_group.h"

struct stream_sink {
	FILE *out;
	bool json;
	bool colour;			/* text on a terminal, NO_COLOR unset */
	bool closed;			/* a write failed: nothing more is written */
	struct report_groups *groups;	/* text: repeats counted; NULL: every report written */
	void (*on_closed)(void *ctx);
	void *ctx;
};

/* colour_of: the FILE whose being a terminal decides colour (out itself, or NULL: none). */
void stream_sink_init(struct stream_sink *s, FILE *out, FILE *colour_of, bool json,
		      void (*on_closed)(void *ctx), void *ctx);
/* The engine sink that writes into s. */
struct engine_sink stream_sink(struct stream_sink *s);
/* Writes the lines of grouped repeats that are due (call it every second or so). */
void stream_sink_tick(struct stream_sink *s);
/* Writes every line still held, and frees the groups. */
void stream_sink_finish(struct stream_sink *s);

#endif
