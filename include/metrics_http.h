/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The metrics endpoint: GET /metrics over HTTP (libmicrohttpd), driven by the service's own
 * sd-event loop, so that rendering reads the metrics on the thread that updates them.
 */
#ifndef AIOCOPD_METRICS_HTTP_H
#define AIOCOPD_METRICS_HTTP_H

#include <stddef.h>

#include <systemd/sd-event.h>

#include "metrics.h"

struct metrics_http;

/*
 * Listens on listen ("127.0.0.1:9477", "[::1]:9477", "0.0.0.0:9477"). Returns 0, or a
 * negative errno with one line in err ("metrics_listen 127.0.0.1:9477: Address already in
 * use").
 */
int metrics_http_open(struct metrics_http **out, sd_event *loop, const char *listen,
		      const struct metrics *m, char *err, size_t errsz);
void metrics_http_close(struct metrics_http *h);

#endif
