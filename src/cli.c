// SPDX-License-Identifier: GPL-2.0
/*
 * Command-line pieces shared by `aiocopd -p`, `aiocopd trace` and `aiocopd exec`.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <syslog.h>
#include <unistd.h>

#include "cli.h"
#include "privileges.h"

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

static int parse_format(const char *arg, enum tracedoc_format *out)
{
	if (!strcmp(arg, "json"))
		*out = TRACEDOC_JSON;
	else if (!strcmp(arg, "chrome"))
		*out = TRACEDOC_CHROME;
	else
		return cli_usage_error("invalid format '%s' (json or chrome)", arg);
	return 0;
}

static int parse_level(const char *arg, int *out)
{
	for (int l = LEVEL_LOW; l <= LEVEL_HIGH; l++)
		if (!strcmp(arg, severity_level_name(l))) {
			*out = l;
			return 0;
		}
	return cli_usage_error("invalid level '%s' (low, medium or high)", arg);
}

enum { OPT_JSON = 256, OPT_VERSION, OPT_FORMAT, OPT_FAIL_ON, OPT_TRACE_DEPTH, OPT_ALL,
       OPT_APP_PATH };

/* Every option of every command, and which commands take it. */
static const struct {
	struct option opt;
	unsigned commands;		/* enum cli_command bits */
} option_table[] = {
	{ { "pid",		required_argument,	NULL, 'p' },		CMD_LIVE | CMD_TRACE },
	{ { "duration",		required_argument,	NULL, 'd' },		CMD_LIVE | CMD_TRACE },
	{ { "output",		required_argument,	NULL, 'o' },		CMD_TRACE | CMD_EXEC },
	{ { "format",		required_argument,	NULL, OPT_FORMAT },	CMD_TRACE | CMD_EXEC },
	{ { "fail-on",		required_argument,	NULL, OPT_FAIL_ON },	CMD_EXEC },
	{ { "json",		no_argument,		NULL, OPT_JSON },	CMD_LIVE | CMD_EXEC },
	{ { "threshold-ms",	required_argument,	NULL, 't' },		CMD_ALL },
	{ { "trace-depth",	required_argument,	NULL, OPT_TRACE_DEPTH },	CMD_ALL },
	{ { "all",		no_argument,		NULL, OPT_ALL },	CMD_ALL },
	{ { "app-path",		required_argument,	NULL, OPT_APP_PATH },	CMD_ALL },
	{ { "verbose",		no_argument,		NULL, 'v' },		CMD_ALL },
	{ { "help",		no_argument,		NULL, 'h' },		CMD_ALL },
	{ { "version",		no_argument,		NULL, OPT_VERSION },	CMD_LIVE },
};

#define N_OPTIONS	(sizeof(option_table) / sizeof(option_table[0]))

/* The getopt_long tables of one command: its long options and its short letters. */
static void command_options(enum cli_command which, struct option *longs, char *shorts)
{
	size_t n = 0, k = 0;

	if (which == CMD_EXEC)
		shorts[k++] = '+';	/* the first word that is not an option starts CMD */
	for (size_t i = 0; i < N_OPTIONS; i++) {
		const struct option *o = &option_table[i].opt;

		if (!(option_table[i].commands & which))
			continue;
		longs[n++] = *o;
		if (o->val < 256) {
			shorts[k++] = (char)o->val;
			if (o->has_arg == required_argument)
				shorts[k++] = ':';
		}
	}
	longs[n] = (struct option){ 0 };
	shorts[k] = 0;
}

/* One option's value into args; returns 0 or EXIT_USAGE (with the error printed). */
static int take_option(int c, const char *arg, struct cli_args *args)
{
	struct engine_options *eng = &args->engine;
	long l;

	switch (c) {
	case 'p':
		if (!cli_parse_long(arg, 1, INT32_MAX, &l))
			return cli_usage_error("invalid PID '%s'", arg);
		args->pid = l;
		return 0;
	case 'd':
		if (!cli_parse_double(arg, 0.001, 365 * 86400.0, &args->duration_s))
			return cli_usage_error("invalid duration '%s' (seconds, > 0)", arg);
		return 0;
	case 't':
		if (!cli_parse_double(arg, 0.001, 3600e3, &eng->threshold_ms))
			return cli_usage_error("invalid threshold '%s' (milliseconds, > 0)", arg);
		return 0;
	case OPT_TRACE_DEPTH:
		if (!cli_parse_long(arg, 1, AIOCOPD_MAX_FRAMES, &l))
			return cli_usage_error("invalid trace depth '%s' (1 to 64)", arg);
		eng->trace_depth = l;
		return 0;
	case 'o':
		args->output = arg;
		return 0;
	case OPT_FORMAT:
		return parse_format(arg, &args->format);
	case OPT_FAIL_ON:
		return parse_level(arg, &args->fail_on);
	case OPT_JSON:
		args->json = true;
		return 0;
	case OPT_ALL:
		eng->report_all = true;
		return 0;
	case OPT_APP_PATH:
		if (!arg[0])
			return cli_usage_error("invalid application path '%s' (a path prefix)", arg);
		if (eng->n_app_paths >= RECON_MAX_APP_PATHS)
			return cli_usage_error("too many --app-path options: '%s' is one too many",
					       arg);
		eng->app_paths[eng->n_app_paths++] = arg;	/* argv outlives the engine */
		return 0;
	case 'v':
		eng->verbose++;		/* -vv: also what happens to every process */
		return 0;
	}
	return cli_usage_error("unexpected option '%s'", arg ? arg : "?");
}

/* getopt's own message would start with argv[0]: say it ours. */
static int unknown_option(const char *word)
{
	char letter[3] = { '-', (char)optopt, 0 };

	/* optopt names a short option; a long one is only in the word */
	return cli_usage_error("unknown option, or one without its value: '%s'",
			       optopt ? letter : word);
}

int cli_parse_args(enum cli_command which, int argc, char **argv, const char *usage,
		   struct cli_args *args)
{
	struct option longs[N_OPTIONS + 1];
	char shorts[2 * N_OPTIONS + 2];
	int c, ret;

	memset(args, 0, sizeof(*args));
	args->engine.threshold_ms = 30;
	args->engine.trace_depth = 20;
	args->fail_on = -1;
	command_options(which, longs, shorts);
	optind = 1;
	opterr = 0;		/* our own message, not one that starts with argv[0] */
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (c == '?' || c == ':')
			return unknown_option(argv[optind - 1]);
		if (c == 'h') {
			fputs(usage, stdout);
			exit(0);
		}
		if (c == OPT_VERSION) {
			printf("aiocopd %s\n", AIOCOPD_VERSION);
			exit(0);
		}
		ret = take_option(c, optarg, args);
		if (ret)
			return ret;
	}
	if (which == CMD_EXEC) {
		args->cmd = argv + optind;
		return 0;
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

bool cli_check_privileges(void)
{
	char msg[512];

	if (privileges_check_start(msg, sizeof(msg)))
		return true;
	fprintf(stderr, "aiocopd: %s\n", msg);
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

void cli_print_place(const struct watched *w)
{
	const struct py_target *t = &w->target;
	char place[PATH_MAX + 256];

	target_place_describe(t->pid, &t->place, place, sizeof(place));
	fprintf(stderr, "aiocopd: PID %d: %s; runtime opened through %s\n", t->pid, place,
		t->runtime_via ? t->runtime_via : "?");
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
	if (engine_options(e)->verbose)
		cli_print_place(w);
}

static void on_target_exec(void *ctx, pid_t pid, bool watched, const char *why)
{
	struct cli_exec_follow *cf = ctx;
	struct watched *w = engine_find(cf->engine, pid);

	if (watched && w) {
		fprintf(stderr, "aiocopd: PID %d replaced its program: watching it again "
			"(CPython %s)\n", pid, w->target.version);
		return;
	}
	fprintf(stderr, "aiocopd: PID %d replaced its program and is no longer watched: %s\n",
		pid, why && why[0] ? why : "not a CPython process");
	sd_event_exit(cf->loop, STOP_TARGET_EXEC);
}

int cli_follow_execs(struct cli_exec_follow *cf, struct engine *e, sd_event *loop, pid_t pid)
{
	struct follow_hooks hooks = { .decided = on_target_exec, .ctx = cf };
	int ret;

	*cf = (struct cli_exec_follow){ .engine = e, .loop = loop };
	ret = follow_open(&cf->follower, e, &hooks);
	if (!ret)
		ret = follow_execs(cf->follower, pid);
	if (ret)
		fprintf(stderr, "aiocopd: cannot follow the execs of PID %d: %s\n", pid,
			strerror(-ret));
	return ret;
}

void cli_exec_follow_close(struct cli_exec_follow *cf)
{
	follow_close(cf->follower);
	cf->follower = NULL;
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

/* The engine filters LOG_INFO by its verbose option. */
void cli_log(void *ctx, int level, const char *msg)
{
	fprintf(stderr, "aiocopd: %s\n", msg);
}

struct engine *cli_engine_open(const struct cli_args *args, sd_event *loop)
{
	struct engine *e = NULL;
	char err[512] = "";

	if (engine_open(&e, &args->engine, loop, cli_log, NULL, err, sizeof(err))) {
		fprintf(stderr, "aiocopd: %s\n", err[0] ? err : "cannot load the BPF programs");
		return NULL;
	}
	return e;
}

void cli_report_losses(const struct engine *e)
{
	uint64_t ring = e ? engine_lost(e, LOST_RING_BUFFER) : 0;
	uint64_t table = e ? engine_lost(e, LOST_TABLE_FULL) : 0;
	uint64_t unnamed = e ? engine_reports_unnamed(e) : 0;

	if (ring)
		fprintf(stderr, "aiocopd: %llu records lost (ring buffer full)\n",
			(unsigned long long)ring);
	if (table)
		fprintf(stderr, "aiocopd: %llu processes or threads not watched (BPF maps full)\n",
			(unsigned long long)table);
	if (unnamed)
		fprintf(stderr, "aiocopd: %llu report(s) name no frame: their process's memory was "
			"gone or unreadable when they were read (as after os._exit, which skips "
			"finalization)\n",
			(unsigned long long)unnamed);
}

void cli_announce_loop_thread(void *ctx, const struct watched *w, pid_t tid)
{
	fprintf(stderr, "aiocopd: event loop running in thread %d of PID %d\n", tid, w->pid);
}
