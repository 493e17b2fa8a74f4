// SPDX-License-Identifier: GPL-2.0
/*
 * Command-line pieces shared by `aiocopd -p`, `aiocopd trace` and `aiocopd exec`.
 */
#include <errno.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "cli.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON	38
#endif
#ifndef CAP_BPF
#define CAP_BPF		39
#endif

/* Which help a usage error points to: "aiocopd", "aiocopd trace" or "aiocopd exec". */
const char *cli_command = "aiocopd";

int cli_usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "aiocopd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry '%s --help' for more information.\n", cli_command);
	return EXIT_USAGE;
}

bool cli_parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_parse_format(const char *arg, enum tracedoc_format *out)
{
	if (!strcmp(arg, "json"))
		*out = TRACEDOC_JSON;
	else if (!strcmp(arg, "chrome"))
		*out = TRACEDOC_CHROME;
	else
		return cli_usage_error("invalid format '%s' (json or chrome)", arg);
	return 0;
}

void cli_default_options(struct cli_common *common)
{
	common->engine.threshold_ms = 30;
	common->engine.trace_depth = 20;
}

bool cli_common_option(int opt, const char *arg, struct cli_common *common, pid_t *pid,
		       int *ret)
{
	struct engine_options *mon = &common->engine;
	long l;

	*ret = 0;
	switch (opt) {
	case 'p':
		if (!cli_parse_long(arg, 1, INT32_MAX, &l))
			*ret = cli_usage_error("invalid PID '%s'", arg);
		else
			*pid = l;
		return true;
	case 'd':
		if (!cli_parse_double(arg, 0.001, 365 * 86400.0, &common->duration_s))
			*ret = cli_usage_error("invalid duration '%s' (seconds, > 0)", arg);
		return true;
	case 't':
		if (!cli_parse_double(arg, 0.001, 3600e3, &mon->threshold_ms))
			*ret = cli_usage_error("invalid threshold '%s' (milliseconds, > 0)", arg);
		return true;
	case 'T':
		if (!cli_parse_long(arg, 1, AIOCOPD_MAX_FRAMES, &l))
			*ret = cli_usage_error("invalid trace depth '%s' (1 to 64)", arg);
		else
			mon->trace_depth = l;
		return true;
	case 'A':
		mon->report_all = true;
		return true;
	case 'v':
		mon->verbose = true;
		return true;
	}
	return false;
}

static bool has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* Names the capabilities we lack, or returns false when we have what we need. */
static bool missing_caps(char *buf, size_t bufsz)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};
	bool admin;
	size_t used = 0;

	buf[0] = 0;
	if (syscall(SYS_capget, &hdr, data))
		return false;	/* cannot tell: let the kernel decide */
	admin = has_cap(data, CAP_SYS_ADMIN);
	if (!admin && !has_cap(data, CAP_BPF))
		used += snprintf(buf + used, bufsz - used, "%sCAP_BPF", used ? ", " : "");
	if (!admin && !has_cap(data, CAP_PERFMON) && used < bufsz)
		used += snprintf(buf + used, bufsz - used, "%sCAP_PERFMON", used ? ", " : "");
	if (!has_cap(data, CAP_SYS_PTRACE) && used < bufsz)
		used += snprintf(buf + used, bufsz - used, "%sCAP_SYS_PTRACE", used ? ", " : "");
	return used > 0;
}

bool cli_check_privileges(void)
{
	char caps[128];

	if (!missing_caps(caps, sizeof(caps)))
		return true;
	fprintf(stderr, "aiocopd: missing privileges: needs %s (run as root)\n", caps);
	return false;
}

int cli_inspect(pid_t pid, struct py_target *t)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	char err[512];

	if (kill(pid, 0) && errno == ESRCH) {
		fprintf(stderr, "aiocopd: no such process: %d\n", pid);
		return 1;
	}
	if (!cli_check_privileges())
		return 1;
	if (target_inspect(pid, &topts, t, err, sizeof(err))) {
		fprintf(stderr, "aiocopd: %s\n", err);
		return 1;
	}
	return 0;
}

void cli_print_attached(const struct engine *e, const struct watched *w)
{
	const struct py_target *t = &w->target;
	const char *gc = engine_gc_source(w);

	fprintf(stderr, "aiocopd: attached to PID %d (CPython %s, %zu loop thread(s) seen so far)\n",
		t->pid, t->version, w->loop_threads);
	if (engine_options(e)->verbose)
		fprintf(stderr, "aiocopd: runtime %s, layout from the %s, context_run from the "
			"%s, garbage collections timed by %s, %d syscall tracepoint(s) "
			"unavailable\n", t->runtime_path, t->layout_source, t->context_run_source,
			gc ? gc : "nothing", engine_tracepoints_missing(e));
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ctx)
{
	return sd_event_exit(sd_event_source_get_event(s), STOP_SIGNAL);
}

int cli_event_loop(sd_event **out)
{
	sigset_t mask;
	int ret;

	signal(SIGPIPE, SIG_IGN);	/* a closed stdout is a failed write, seen by the sink */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);	/* sd-event takes them through a signalfd */
	ret = sd_event_new(out);
	if (ret < 0)
		return ret;
	ret = sd_event_add_signal(*out, NULL, SIGINT, on_stop_signal, NULL);
	if (ret >= 0)
		ret = sd_event_add_signal(*out, NULL, SIGTERM, on_stop_signal, NULL);
	if (ret < 0)
		*out = sd_event_unref(*out);
	return ret < 0 ? ret : 0;
}

static int on_duration(sd_event_source *s, uint64_t usec, void *ctx)
{
	return sd_event_exit(sd_event_source_get_event(s), STOP_DURATION);
}

int cli_stop_after(sd_event *loop, double seconds)
{
	if (seconds <= 0)
		return 0;
	return sd_event_add_time_relative(loop, NULL, CLOCK_MONOTONIC, (uint64_t)(seconds * 1e6),
					  1000, on_duration, NULL);
}

void cli_log(void *ctx, int level, const char *msg)
{
	const bool *verbose = ctx;

	if (level >= LOG_INFO && !(verbose && *verbose))
		return;
	fprintf(stderr, "aiocopd: %s\n", msg);
}

struct engine *cli_engine_open(const struct cli_common *common, sd_event *loop)
{
	struct engine *e = NULL;
	char err[512] = "";

	if (engine_open(&e, &common->engine, loop, cli_log, (void *)&common->engine.verbose,
			err, sizeof(err))) {
		fprintf(stderr, "aiocopd: %s\n", err[0] ? err : "cannot load the BPF programs");
		return NULL;
	}
	return e;
}

void cli_report_losses(const struct engine *e)
{
	uint64_t lost = e ? engine_lost(e, LOST_RING_BUFFER) : 0;

	if (lost)
		fprintf(stderr, "aiocopd: %llu records lost (ring buffer full)\n",
			(unsigned long long)lost);
}

void cli_announce_loop_thread(void *ctx, const struct watched *w, pid_t tid)
{
	fprintf(stderr, "aiocopd: event loop running in thread %d of PID %d\n", tid, w->pid);
}
