/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The service's metrics (SPEC 6.4): counters, gauges and histograms whose label sets are
 * bounded by the configuration (the [watch] rule names, the fixed levels, categories, loss
 * kinds and attach-failure reasons), rendered in the Prometheus text exposition format.
 * No label ever carries a pid, a task name, a path or a stack.
 */
#ifndef AIOCOPD_METRICS_H
#define AIOCOPD_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aiocopd.h"
#include "classify.h"

/* Why a matching process could not be watched: the values of the `reason` label. */
enum attach_failure {
	ATTACH_NOT_PYTHON,		/* never turned out to be a CPython */
	ATTACH_UNSUPPORTED,		/* a CPython without a known layout */
	ATTACH_NO_ACCESS,		/* /proc or its memory unreadable */
	ATTACH_PROBE,			/* a probe could not be attached */
	ATTACH_GONE,			/* exited while being attached */
	ATTACH_TABLE_FULL,		/* the engine's limits */
	ATTACH_FAILURE_KINDS,
};

/* What the service counts as lost, beyond the engine's LOST_* kinds (`kind` label). */
enum service_loss {
	SERVICE_LOST_LOG_WRITE = LOST_KINDS,	/* a report the log refused (journal absent, disk full) */
	SERVICE_LOST_RATE_TABLE,		/* the rate limiter's table was full: written unlimited */
	SERVICE_LOSS_KINDS,
};

struct metrics;

struct metrics *metrics_new(const char *version);
void metrics_free(struct metrics *m);

/*
 * The services (rule names) of the configuration now in force. Series of a service that is
 * no longer configured go; those of a kept one keep their values. Returns 0 or -ENOMEM.
 */
int metrics_set_services(struct metrics *m, const char *const *names, size_t n);

/* Updates; a service not configured is ignored (never a new label value). */
void metrics_set_watched(struct metrics *m, const char *service, unsigned n);
void metrics_slow_callback(struct metrics *m, const char *service, enum severity_level level,
			   double seconds);
void metrics_blocking(struct metrics *m, const char *service, enum category category,
		      double seconds);
/* Iterations more in each kernel bucket (loop_hist_bucket()), and their busy time. */
void metrics_loop_busy(struct metrics *m, const char *service,
		       const uint32_t hist[LOOP_HIST_BUCKETS], uint64_t busy_ns);
void metrics_suppressed(struct metrics *m, const char *service, uint64_t n);
void metrics_attach_failure(struct metrics *m, enum attach_failure reason);
/* kind: LOST_* or SERVICE_LOST_*; the engine's totals are set, the service's added to. */
void metrics_set_lost(struct metrics *m, unsigned kind, uint64_t total);
void metrics_add_lost(struct metrics *m, unsigned kind, uint64_t n);
void metrics_config_reload(struct metrics *m, bool ok);

/* The exposition (text format 0.0.4), malloc'd, NUL-terminated; NULL on ENOMEM. */
char *metrics_render(const struct metrics *m, size_t *len);

#endif
