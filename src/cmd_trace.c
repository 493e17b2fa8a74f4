// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd trace`: watch one process for a fixed time and write one document, the trace
 * JSON or a Perfetto timeline. The output file is created before tracing starts (an
 * unwritable path fails at once) and replaced atomically at the end, also when the target
 * exits early or the user interrupts.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
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
"      --app-path PREFIX   the application's files start with PREFIX (repeatable):\n"
"                          entry points are their frames\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"  -v, --verbose           say how the target was inspected\n"
"  -h, --help              show this help\n"
"\n"
"Every callback is probed while tracing, so loop statistics count them all.\n"
"Exit status: 0 when the document was written (also after Ctrl-C or the target's exit);\n"
"1 on errors; 2 on usage errors. See aiocopd(8).\n";

static int parse_trace_args(int argc, char **argv, struct cli_args *cli)
{
	int ret = cli_parse_args(CMD_TRACE, argc, argv, trace_usage, cli);

	if (ret)
		return ret;
	if (!cli->pid)
		return cli_usage_error("%s", "trace: missing -p PID");
	/* one document describes one process: say so rather than drop the others */
	if (cli->n_pids > 1)
		return cli_usage_error("%s", "trace: one -p PID per trace document");
	if (cli->duration_s <= 0)
		return cli_usage_error("%s", "trace: missing -d SECONDS");
	if (!cli->output)
		return cli_usage_error("%s", "trace: missing -o FILE");
	cli->engine.armed_from_start = true;
	cli->engine.stats = true;
	return 0;
}

#define PROGRESS_INTERVAL_US	500000

struct trace_run {
	sd_event *loop;
	struct engine *engine;
	struct tracedoc doc;
	pid_t pid;
	double duration_s;
	uint64_t start_ns;
	size_t remaining;		/* 1 while the target is watched */
	struct cli_exec_follow execs;
};

/* The target exited; one that exec'd is followed (cli_follow_execs says what became of it). */
static void trace_process(void *ctx, const struct watched *w, enum process_change change)
{
	struct trace_run *t = ctx;

	if (change == PROCESS_EXITED)
		sd_event_exit(t->loop, STOP_TARGET_EXIT);
}

/* With stderr on a terminal: one line that says how far the trace is. */
static int trace_progress(sd_event_source *s, uint64_t usec, void *ctx)
{
	struct trace_run *t = ctx;
	double elapsed = (engine_now_ns() - t->start_ns) / 1e9, left = t->duration_s - elapsed;

	fprintf(stderr, "\r\033[Kaiocopd: tracing PID %d: %.0fs elapsed, %.0fs left, "
		"%llu report(s)", t->pid, elapsed, left > 0 ? left : 0,
		(unsigned long long)engine_reports(t->engine));
	fflush(stderr);
	return sd_event_source_set_time_relative(s, PROGRESS_INTERVAL_US);
}

static const char *stop_reason(int why)
{
	return why == STOP_DURATION ? "duration" :
	       why == STOP_TARGET_EXIT ? "target_exited" :
	       why == STOP_TARGET_EXEC ? "target_replaced" : "interrupted";
}

static int add_sources(struct trace_run *run, const struct cli_args *cli)
{
	struct engine_sink doc = tracedoc_sink(&run->doc);
	struct engine_sink process = { .process = trace_process,
				       .loop_thread = cli_announce_loop_thread, .ctx = run };
	sd_event_source *progress = NULL;
	int ret;

	ret = engine_add_sink(run->engine, &doc);
	if (!ret)
		ret = engine_add_sink(run->engine, &process);
	if (!ret && isatty(STDERR_FILENO)) {
		ret = sd_event_add_time_relative(run->loop, &progress, CLOCK_MONOTONIC,
						 PROGRESS_INTERVAL_US, 10000, trace_progress, run);
		if (!ret)
			ret = sd_event_source_set_enabled(progress, SD_EVENT_ON);
		if (!ret)
			ret = sd_event_source_set_floating(progress, 1);
		sd_event_source_unref(progress);	/* the loop owns it now */
	}
	return ret < 0 ? ret : 0;
}

/* Writes the document; returns 0, or 1 with the error printed. */
static int write_trace(struct trace_run *run, const struct cli_args *cli, int why,
		       double start, int fd, const char *tmp)
{
	struct json_object *doc;
	double end;
	int ret;

	engine_drain(run->engine);
	engine_flush_stats(run->engine);
	if (isatty(STDERR_FILENO))
		fprintf(stderr, "\r\033[K");
	tracedoc_set_lost(&run->doc, engine_lost(run->engine, LOST_RING_BUFFER),
			  engine_lost(run->engine, LOST_CALLBACK_CAP));
	end = engine_wall_time(run->engine, engine_now_ns());
	doc = tracedoc_build(&run->doc, tracedoc_metadata(&cli->engine,
							  cli->duration_s, cli->format,
							  start, end, stop_reason(why)),
			     cli->format);
	ret = tracedoc_write_atomic(doc, tmp, fd, cli->output);
	json_object_put(doc);
	if (ret) {
		fprintf(stderr, "aiocopd: cannot write %s: %s\n", cli->output, strerror(-ret));
		return 1;
	}
	fprintf(stderr, "aiocopd: wrote %s: %llu report(s) in %.1f s%s\n", cli->output,
		(unsigned long long)engine_reports(run->engine), end - start,
		why == STOP_TARGET_EXIT ? " (the target exited before the end)" :
		why == STOP_TARGET_EXEC ? " (the target replaced its program before the end)" :
		why == STOP_SIGNAL ? " (interrupted)" : "");
	return 0;
}

int cmd_trace(int argc, char **argv)
{
	struct cli_args cli;
	struct trace_run run = {};
	struct py_target target;
	struct watched *w;
	char err[512] = "", tmp[PATH_MAX + 32];
	bool have_doc = false;
	double start;
	int fd, ret, why;

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
	ret = 1;
	run.pid = cli.pid;
	run.duration_s = cli.duration_s;
	if (cli_event_loop(&run.loop)) {
		fprintf(stderr, "aiocopd: cannot set up the event loop\n");
		goto fail;
	}
	run.engine = cli_engine_open(&cli, run.loop);
	if (!run.engine)
		goto fail;
	if (tracedoc_init(&run.doc, engine_now_ns())) {
		fprintf(stderr, "aiocopd: out of memory\n");
		goto fail;
	}
	have_doc = true;
	if (add_sources(&run, &cli))
		goto fail;
	w = engine_watch(run.engine, &target, 0, err, sizeof(err));
	if (!w) {
		fprintf(stderr, "aiocopd: %s\n", err[0] ? err : "cannot attach");
		goto fail;
	}
	run.start_ns = engine_now_ns();
	start = engine_wall_time(run.engine, run.start_ns);
	cli_print_attached(run.engine, w);
	run.remaining = 1;
	if (cli_follow_execs(&run.execs, run.engine, run.loop, &run.pid, 1, &run.remaining) ||
	    cli_stop_after(run.loop, cli.duration_s))
		goto fail;
	why = sd_event_loop(run.loop);
	ret = write_trace(&run, &cli, why, start, fd, tmp);
	fd = -1;
fail:
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	cli_exec_follow_close(&run.execs);
	cli_report_losses(run.engine);
	engine_close(run.engine);	/* before the document its sink fills */
	if (have_doc)
		tracedoc_free(&run.doc);
	sd_event_unref(run.loop);
	return ret;
}
