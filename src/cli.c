// SPDX-License-Identifier: GPL-2.0
/*
 * Command-line pieces shared by `aiocopd -p`, `aiocopd trace` and `aiocopd exec`.
 */
#include <dirent.h>
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
#include "proc_facts.h"

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
       OPT_APP_PATH, OPT_REPORT_NOW };

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
	{ { "report-now",	no_argument,		NULL, OPT_REPORT_NOW },	CMD_EXEC },
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

static void add_pid(struct cli_args *args, pid_t pid)
{
	for (size_t i = 0; i < args->n_pids; i++)
		if (args->pids[i] == pid)
			return;		/* named twice: watched once */
	args->pids[args->n_pids++] = pid;
	args->pid = args->pids[0];
}

int cli_add_pids(struct cli_args *args, const char *value)
{
	char word[32];
	const char *p = value;
	long l;

	for (;;) {
		size_t n = strcspn(p, ",");

		if (n >= sizeof(word))
			return cli_usage_error("invalid PID '%s'", value);
		memcpy(word, p, n);
		word[n] = 0;
		if (!cli_parse_long(word, 1, INT32_MAX, &l))
			return cli_usage_error("invalid PID '%s'", value);
		if (args->n_pids == CLI_MAX_PIDS)
			return cli_usage_error("too many PIDs at '%s' (at most 64)", value);
		add_pid(args, (pid_t)l);
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

/* One option's value into args; returns 0 or EXIT_USAGE (with the error printed). */
static int take_option(int c, const char *arg, struct cli_args *args)
{
	struct engine_options *eng = &args->engine;
	long l;

	switch (c) {
	case 'p':
		return cli_add_pids(args, arg);
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
	case OPT_REPORT_NOW:
		args->report_now = true;
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

#define SCAN_MAX_PROCS		65536	/* processes read to find a wrapper's children */
#define HINT_MAX_DEPTH		4	/* shell -> launcher -> ... -> python */
#define HINT_MAX_NAMED		4	/* CPython descendants named in the hint */

/* The parent of pid as /proc/pid/stat says it, or 0. Its comm may hold any byte: skip to ')'. */
static pid_t parent_of(pid_t pid)
{
	char path[64], buf[512], *close_paren;
	FILE *f;
	int ppid = 0;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	close_paren = strrchr(buf, ')');
	if (!close_paren || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
		return 0;
	return ppid;
}

/* Every (pid, parent) pair on the system, at most SCAN_MAX_PROCS; returns how many. */
static size_t scan_parents(pid_t (*pairs)[2], size_t max)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	size_t n = 0;
	long l;

	if (!d)
		return 0;
	while (n < max && (de = readdir(d)))
		if (cli_parse_long(de->d_name, 1, INT32_MAX, &l)) {
			pairs[n][0] = (pid_t)l;
			pairs[n][1] = parent_of((pid_t)l);
			n++;
		}
	closedir(d);
	return n;
}

/*
 * Whether pid runs a CPython (any version: an unsupported one is still worth naming), and
 * its command name, printable (it is the target's to choose).
 */
static bool runs_cpython(pid_t pid, const struct target_options *topts, char *comm,
			 size_t commsz)
{
	struct py_target *t = calloc(1, sizeof(*t));
	char err[256];
	int ret;

	if (!t)
		return false;
	ret = target_inspect(pid, topts, t, err, sizeof(err));
	snprintf(comm, commsz, "%s", t->comm);
	for (char *c = comm; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	free(t);
	return ret == 0 || ret == -TARGET_UNSUPPORTED || ret == -TARGET_NO_SYMBOL;
}

/*
 * Appends to msg "; its CPython child(ren): PID N (cmd), ..." when pid, which is not a
 * CPython, started one (a wrapper shell, a launcher): the PID the user meant.
 */
static void hint_python_descendants(pid_t pid, const struct target_options *topts,
				    char *msg, size_t msgsz)
{
	pid_t (*pairs)[2] = calloc(SCAN_MAX_PROCS, sizeof(*pairs));
	pid_t level[HINT_MAX_NAMED * 16], next[HINT_MAX_NAMED * 16], found[HINT_MAX_NAMED];
	char comm[HINT_MAX_NAMED][32];
	size_t n_pairs, n_level = 1, n_found = 0, used = strlen(msg);

	if (!pairs)
		return;
	n_pairs = scan_parents(pairs, SCAN_MAX_PROCS);
	level[0] = pid;
	for (int depth = 0; depth < HINT_MAX_DEPTH && n_level && n_found < HINT_MAX_NAMED;
	     depth++) {
		size_t n_next = 0;

		for (size_t i = 0; i < n_pairs && n_found < HINT_MAX_NAMED; i++) {
			bool child = false;

			for (size_t k = 0; k < n_level && !child; k++)
				child = pairs[i][1] == level[k];
			if (!child)
				continue;
			if (runs_cpython(pairs[i][0], topts, comm[n_found], sizeof(comm[0])))
				found[n_found++] = pairs[i][0];
			else if (n_next < sizeof(next) / sizeof(next[0]))
				next[n_next++] = pairs[i][0];
		}
		memcpy(level, next, n_next * sizeof(next[0]));
		n_level = n_next;
	}
	free(pairs);
	for (size_t i = 0; i < n_found && used < msgsz; i++)
		used += snprintf(msg + used, msgsz - used, "%s PID %d (%s)",
				 i ? "," : n_found > 1 ? "; its CPython children:" :
				 "; its CPython child:", found[i], comm[i]);
	if (n_found && used < msgsz)
		snprintf(msg + used, msgsz - used, " (watch %s with -p)", n_found > 1 ? "them" : "it");
}

int cli_inspect(pid_t pid, struct py_target *t)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	char err[1024];
	int ret;

	if (!proc_alive(pid)) {
		fprintf(stderr, "aiocopd: no such process: %d\n", pid);
		return 1;
	}
	if (!cli_check_privileges())
		return 1;
	ret = target_inspect(pid, &topts, t, err, sizeof(err) / 2);
	if (ret) {
		if (ret == -TARGET_NOT_PYTHON)
			hint_python_descendants(pid, &topts, err, sizeof(err));
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
	if (*cf->remaining && --*cf->remaining)
		return;
	sd_event_exit(cf->loop, STOP_TARGET_EXEC);
}

int cli_follow_execs(struct cli_exec_follow *cf, struct engine *e, sd_event *loop,
		     const pid_t *pids, size_t n_pids, size_t *remaining)
{
	struct follow_hooks hooks = { .decided = on_target_exec, .ctx = cf };
	int ret;

	*cf = (struct cli_exec_follow){ .engine = e, .loop = loop, .remaining = remaining };
	ret = follow_open(&cf->follower, e, &hooks);
	if (ret) {
		fprintf(stderr, "aiocopd: cannot follow execs: %s\n", strerror(-ret));
		return ret;
	}
	for (size_t i = 0; i < n_pids; i++) {
		ret = follow_execs(cf->follower, pids[i]);
		if (ret) {
			fprintf(stderr, "aiocopd: cannot follow the execs of PID %d: %s\n",
				pids[i], strerror(-ret));
			return ret;
		}
	}
	return 0;
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
