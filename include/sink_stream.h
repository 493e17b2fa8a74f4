/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The report stream: every report written as it comes, as a text block or one JSON line, on
 * a FILE such as stdout (the live monitor) or stderr (exec). A reader that goes away (a
 * closed pipe) is noticed on the next write and told to the owner, which stops.
 */
#ifndef AIOCOPD_SINK_STREAM_H
#define AIOCOPD_SINK_STREAM_H

#include <stdbool.h>
#include <stdio.h>

#include "engine.h"

struct stream_sink {
	FILE *out;
	bool json;
	bool closed;			/* a write failed: nothing more is written */
	void (*on_closed)(void *ctx);
	void *ctx;
};

void stream_sink_init(struct stream_sink *s, FILE *out, bool json,
		      void (*on_closed)(void *ctx), void *ctx);
/* The engine sink that writes into s. */
struct engine_sink stream_sink(struct stream_sink *s);

#endif
