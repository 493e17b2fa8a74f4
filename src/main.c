// SPDX-License-Identifier: GPL-2.0
/*
 * aiocopd command line: option parsing, privilege checks, error messages and exit codes
 * (SPEC section 2). The work itself is in monitor.c.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monitor.h"
#include "target.h"

#define EXIT_USAGE	2

#ifndef CAP_PERFMON
#define CAP_PERFMON	38
#endif
#ifndef CAP_BPF
#define CAP_BPF		39
#endif

static const char usage_text[] =
"Usage: aiocopd -p PID [options]\n"
"Find what freezes a Python asyncio event loop, from outside the process.\n"
"\n"
"  -p, --pid PID           the CPython process to watch\n"
"  -t, --threshold-ms N    a callback is slow when it runs at least N ms (default 30)\n"
"      --trace-depth N     Python frames kept per stack (default 20, at most 64)\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"      --json              one JSON object per line on stdout instead of text\n"
"  -d, --duration S        stop after S seconds\n"
"  -v, --verbose           say how the target was inspected\n"
"  -h, --help              show this help\n"
"      --version           show the version\n"
"\n"
"Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE.\n"
"Exit status: 0 after Ctrl-C, SIGTERM, --duration or the target's exit; 1 on errors;\n"
"2 on usage errors. See aiocopd(8).\n";

enum { OPT_TRACE_DEPTH = 256, OPT_ALL, OPT_JSON, OPT_VERSION };

static const struct option long_options[] = {
	{ "pid",		required_argument,	NULL, 'p' },
	{ "threshold-ms",	required_argument,	NULL, 't' },
	{ "trace-depth",	required_argument,	NULL, OPT_TRACE_DEPTH },
	{ "all",		no_argument,		NULL, OPT_ALL },
	{ "json",		no_argument,		NULL, OPT_JSON },
	{ "duration",		required_argument,	NULL, 'd' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "aiocopd: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'aiocopd --help' for more information.\n");
	return EXIT_USAGE;
}

static bool parse_double(const char *s, double min, double max, double *out)
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

static bool parse_long(const char *s, long min, long max, long *out)
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

struct cli {
	pid_t pid;
	struct monitor_options mon;
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
	long l;
	int c;

	cli->mon.threshold_ms = 30;
	cli->mon.trace_depth = 20;
	while ((c = getopt_long(argc, argv, "p:t:d:vh", long_options, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_long(optarg, 1, INT32_MAX, &l))
				return usage_error("invalid PID '%s'", optarg);
			cli->pid = l;
			break;
		case 't':
			if (!parse_double(optarg, 0.001, 3600e3, &cli->mon.threshold_ms))
				return usage_error("invalid threshold '%s' (milliseconds, > 0)",
						   optarg);
			break;
		case OPT_TRACE_DEPTH:
			if (!parse_long(optarg, 1, AIOCOPD_MAX_FRAMES, &l))
				return usage_error("invalid trace depth '%s' (1 to 64)", optarg);
			cli->mon.trace_depth = l;
			break;
		case OPT_ALL:
			cli->mon.report_all = true;
			break;
		case OPT_JSON:
			cli->mon.json = true;
			break;
		case 'd':
			if (!parse_double(optarg, 0.001, 365 * 86400.0, &cli->mon.duration_s))
				return usage_error("invalid duration '%s' (seconds, > 0)", optarg);
			break;
		case 'v':
			cli->mon.verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case OPT_VERSION:
			printf("aiocopd %s\n", AIOCOPD_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'aiocopd --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!cli->pid)
		return usage_error("%s", "missing -p PID");
	return 0;
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

static void print_attached(const struct monitor *m, const struct py_target *t)
{
	fprintf(stderr, "aiocopd: attached to PID %d (CPython %s, %zu loop thread(s) seen so far)\n",
		t->pid, t->version, m->loop_threads);
	if (m->opt->verbose)
		fprintf(stderr, "aiocopd: runtime %s, layout from the %s, context_run from the "
			"%s, garbage collections timed by %s, %d syscall tracepoint(s) "
			"unavailable\n", t->runtime_path, t->layout_source, t->context_run_source,
			m->probes.gc_source ? m->probes.gc_source : "nothing",
			m->probes.tracepoints_missing);
}

int main(int argc, char **argv)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	struct py_target target;
	struct monitor mon;
	struct cli cli = {};
	char err[512], caps[128];
	int ret;

	ret = parse_args(argc, argv, &cli);
	if (ret)
		return ret;
	if (kill(cli.pid, 0) && errno == ESRCH) {
		fprintf(stderr, "aiocopd: no such process: %d\n", cli.pid);
		return 1;
	}
	if (missing_caps(caps, sizeof(caps))) {
		fprintf(stderr, "aiocopd: missing privileges: needs %s (run as root)\n", caps);
		return 1;
	}
	ret = target_inspect(cli.pid, &topts, &target, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "aiocopd: %s\n", err);
		return 1;
	}
	ret = monitor_attach(&mon, &cli.mon, &target, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "aiocopd: %s\n", err[0] ? err : strerror(-ret));
		monitor_close(&mon);
		return 1;
	}
	print_attached(&mon, &target);
	ret = monitor_run(&mon);
	monitor_close(&mon);
	return ret ? 1 : 0;
}
