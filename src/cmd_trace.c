// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd trace`: watch one process for a fixed time and write one document, the trace
 * JSON or a Perfetto timeline. The output file is created before tracing starts (an
 * unwritable path fails at once) and replaced atomically at the end, also when the target
 * exits early or the user interrupts.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "tracedoc.h"

static const char trace_usage[] =
"Usage: aiocopd trace -p PID -d SECONDS -o FILE [options]\n"
"Watch a CPython process for SECONDS and write what froze its event loops to FILE.\n"
"\n"
"  -p, --pid PID           the CPython process to trace\n"
"  -d, --duration S        how long to trace, in seconds\n"
"  -o, --output FILE       where to write the document (replaced atomically)\n"
"      --format FORMAT     json (default; see docs/trace-format.md) or chrome (a timeline\n"
"                          for Perfetto and chrome://tracing)\n"
"  -t, --threshold-ms N    a callback is slow when it runs at least N ms (default 30)\n"
"      --trace-depth N     Python frames kept per stack (default 20, at most 64)\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"  -v, --verbose           say how the target was inspected\n"
"  -h, --help              show this help\n"
"\n"
"Every callback is probed while tracing, so loop statistics count them all.\n"
"Exit status: 0 when the document was written (also after Ctrl-C or the target's exit);\n"
"1 on errors; 2 on usage errors. See aiocopd(8).\n";

static const struct option trace_options[] = {
	{ "pid",		required_argument,	NULL, 'p' },
	{ "duration",		required_argument,	NULL, 'd' },
	{ "output",		required_argument,	NULL, 'o' },
	{ "format",		required_argument,	NULL, 'F' },
	{ "threshold-ms",	required_argument,	NULL, 't' },
	{ "trace-depth",	required_argument,	NULL, 'T' },
	{ "all",		no_argument,		NULL, 'A' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct trace_cli {
	pid_t pid;
	const char *output;
	enum tracedoc_format format;
	struct monitor_options mon;
};

static int parse_trace_args(int argc, char **argv, struct trace_cli *cli)
{
	int c, ret;

	cli_default_options(&cli->mon);
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:d:o:t:vh", trace_options, NULL)) != -1) {
		if (cli_common_option(c, optarg, &cli->mon, &cli->pid, &ret)) {
			if (ret)
				return ret;
			continue;
		}
		switch (c) {
		case 'o':
			cli->output = optarg;
			break;
		case 'F':
			ret = cli_parse_format(optarg, &cli->format);
			if (ret)
				return ret;
			break;
		case 'h':
			fputs(trace_usage, stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'aiocopd trace --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!cli->pid)
		return cli_usage_error("%s", "trace: missing -p PID");
	if (cli->mon.duration_s <= 0)
		return cli_usage_error("%s", "trace: missing -d SECONDS");
	if (!cli->output)
		return cli_usage_error("%s", "trace: missing -o FILE");
	cli->mon.armed_from_start = true;
	cli->mon.stats = true;
	return 0;
}

struct trace_run {
	struct tracedoc doc;
	pid_t pid;
	double duration_s;
	bool progress;			/* stderr is a terminal */
	uint64_t start_ns, last_progress_ns;
};

static void trace_report(struct monitor *m, struct watched *w, const struct report *r)
{
	struct trace_run *t = m->user;

	tracedoc_add_report(&t->doc, r);
}

static void trace_iteration(struct monitor *m, const struct event_iteration *ev)
{
	struct trace_run *t = m->user;

	tracedoc_add_iteration(&t->doc, ev);
}

static void trace_progress(struct monitor *m, uint64_t now)
{
	struct trace_run *t = m->user;
	double elapsed = (now - t->start_ns) / 1e9, left = t->duration_s - elapsed;

	if (!t->progress || now - t->last_progress_ns < 500000000ull)
		return;
	t->last_progress_ns = now;
	fprintf(stderr, "\r\033[Kaiocopd: tracing PID %d: %.0fs elapsed, %.0fs left, "
		"%llu report(s)", t->pid, elapsed, left > 0 ? left : 0,
		(unsigned long long)m->reports);
	fflush(stderr);
}

static const char *stop_reason(enum monitor_stop why)
{
	return why == STOP_DURATION ? "duration" :
	       why == STOP_TARGET_EXIT ? "target_exited" : "interrupted";
}

int cmd_trace(int argc, char **argv)
{
	struct trace_cli cli = {};
	struct trace_run run = {};
	struct py_target target;
	struct json_object *doc;
	struct monitor mon;
	struct watched *w;
	enum monitor_stop why;
	char err[512] = "", tmp[PATH_MAX + 32];
	double start, end;
	int fd, ret;

	ret = parse_trace_args(argc, argv, &cli);
	if (ret)
		return ret;
	ret = cli_inspect(cli.pid, &target);
	if (ret)
		return ret;
	fd = tracedoc_open_tmp(cli.output, tmp, sizeof(tmp));
	if (fd < 0) {
		fprintf(stderr, "aiocopd: cannot write %s: %s\n", cli.output, strerror(-fd));
		return 1;
	}
	if (monitor_open(&mon, &cli.mon, err, sizeof(err)) ||
	    !(w = monitor_add(&mon, &target, err, sizeof(err)))) {
		fprintf(stderr, "aiocopd: %s\n", err[0] ? err : "cannot attach");
		goto fail;
	}
	start = monitor_wall_time(&mon, monitor_now_ns());
	run.pid = cli.pid;
	run.duration_s = cli.mon.duration_s;
	run.progress = isatty(STDERR_FILENO);
	run.start_ns = monitor_now_ns();
	if (tracedoc_init(&run.doc, run.start_ns)) {
		fprintf(stderr, "aiocopd: out of memory\n");
		goto fail;
	}
	tracedoc_add_process(&run.doc, &w->target);
	mon.user = &run;
	mon.on_report = trace_report;
	mon.on_iteration = trace_iteration;
	mon.on_tick = trace_progress;
	cli_print_attached(&mon, w);
	why = monitor_run(&mon);
	monitor_drain(&mon);
	if (run.progress)
		fprintf(stderr, "\r\033[K");
	tracedoc_collect(&run.doc, &mon);
	end = monitor_wall_time(&mon, monitor_now_ns());
	doc = tracedoc_build(&run.doc, tracedoc_metadata(&cli.mon, cli.format, start, end,
							 stop_reason(why)), cli.format);
	ret = tracedoc_write_atomic(doc, tmp, fd, cli.output);
	fd = -1;
	json_object_put(doc);
	if (ret) {
		fprintf(stderr, "aiocopd: cannot write %s: %s\n", cli.output, strerror(-ret));
		tracedoc_free(&run.doc);
		monitor_close(&mon);
		return 1;
	}
	fprintf(stderr, "aiocopd: wrote %s: %llu report(s) in %.1f s%s\n", cli.output,
		(unsigned long long)mon.reports, end - start,
		why == STOP_TARGET_EXIT ? " (the target exited before the end)" :
		why == STOP_SIGNAL ? " (interrupted)" : "");
	tracedoc_free(&run.doc);
	monitor_close(&mon);
	return 0;
fail:
	close(fd);
	unlink(tmp);
	monitor_close(&mon);
	return 1;
}
