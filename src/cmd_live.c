// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd -p PID`: the live monitor. Reports go to stdout as they happen, as text or JSON
 * lines; it ends on SIGINT or SIGTERM, after --duration, when the last target exits, or
 * when stdout is closed (`| head`), always with its probes removed. Text output ends with a
 * summary of the worst entry points of each target on stderr.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "cli.h"
#include "sink_stream.h"
#include "summary.h"

static const char usage_text[] =
"Usage: aiocopd -p PID [options]\n"
"       aiocopd trace -p PID -d SECONDS -o FILE [--format json|chrome] [options]\n"
"       aiocopd exec [--fail-on LEVEL] [-o FILE] [--format json|chrome] [options] -- CMD [ARGS...]\n"
"Find what freezes a Python asyncio event loop, from outside the process.\n"
"\n"
"  -p, --pid PID[,PID...]  the CPython process(es) to watch; repeatable\n"
"  -t, --threshold-ms N    a callback is slow when it runs at least N ms (default 30)\n"
"      --trace-depth N     Python frames kept per stack (default 20, at most 64)\n"
"      --app-path PREFIX   the application's files start with PREFIX (repeatable):\n"
"                          entry points are their frames\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"      --json              one JSON object per line on stdout instead of text\n"
"  -d, --duration S        stop after S seconds\n"
"  -v, --verbose           say how the target was inspected\n"
"  -h, --help              show this help ('aiocopd trace --help', 'aiocopd exec --help')\n"
"      --version           show the version\n"
"\n"
"Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE (a user other than root also\n"
"CAP_DAC_READ_SEARCH; see PRIVILEGES in aiocopd(8) for older kernels).\n"
"Exit status: 0 after Ctrl-C, SIGTERM, --duration or the target's exit; 1 on errors;\n"
"2 on usage errors. See aiocopd(8).\n";

static int parse_args(int argc, char **argv, struct cli_args *args)
{
	int ret = cli_parse_args(CMD_LIVE, argc, argv, usage_text, args);

	if (!ret && !args->n_pids)
		ret = cli_usage_error("%s", "missing -p PID");
	return ret;
}

#define WAITING_NOTICE_US	1000000	/* no loop seen this long after attaching: say so */
#define GROUP_TICK_US		1000000	/* how often the lines of grouped repeats are due */

struct live_run {
	sd_event *loop;
	struct engine *engine;
	struct stream_sink out;
	const pid_t *pids;
	size_t n_pids;
	size_t remaining;		/* targets still watched: the last one gone ends the run */
	struct proc_summary *summaries;	/* one per target, in the order of pids */
	struct cli_exec_follow execs;
};

static void stop_on_closed_stdout(void *ctx)
{
	struct live_run *run = ctx;

	sd_event_exit(run->loop, STOP_SIGNAL);
}

/* A pipe whose reader went away: end now, not at the next report. */
static int on_stdout_error(sd_event_source *s, int fd, uint32_t revents, void *ctx)
{
	stop_on_closed_stdout(ctx);
	return 0;
}

/* A target exited; one that exec'd is followed (cli_follow_execs says what became of it). */
static void live_process(void *ctx, const struct watched *w, enum process_change change)
{
	struct live_run *run = ctx;

	if (change != PROCESS_EXITED)
		return;
	if (run->n_pids > 1)
		fprintf(stderr, "aiocopd: PID %d exited\n", w->pid);
	if (run->remaining && --run->remaining)
		return;
	sd_event_exit(run->loop, STOP_TARGET_EXIT);
}

static void live_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct live_run *run = ctx;

	for (size_t i = 0; i < run->n_pids; i++)
		if (run->pids[i] == w->pid)
			summary_note(&run->summaries[i], r);
}

static int on_group_tick(sd_event_source *s, uint64_t usec, void *ctx)
{
	struct live_run *run = ctx;

	stream_sink_tick(&run->out);
	return sd_event_source_set_time_relative(s, GROUP_TICK_US);
}

/* At the end, on stderr: what each target did, worst entry points first (as exec says it). */
static void print_summary(const struct live_run *run)
{
	for (size_t i = 0; i < run->n_pids; i++) {
		const struct proc_summary *s = &run->summaries[i];

		fprintf(stderr, "aiocopd: summary of PID %d: ", run->pids[i]);
		if (!summary_any_slow(s)) {
			fputs("no slow callback\n", stderr);
			continue;
		}
		summary_write_counts(stderr, s);
		fputc('\n', stderr);
		summary_write_worst(stderr, s, "    ");
	}
}

static int on_waiting(sd_event_source *s, uint64_t usec, void *ctx)
{
	struct live_run *run = ctx;

	for (size_t i = 0; i < run->n_pids; i++) {
		struct watched *w = engine_find(run->engine, run->pids[i]);

		if (w && !w->loop_threads)
			fprintf(stderr, "aiocopd: waiting for an asyncio event loop in PID %d\n",
				run->pids[i]);
	}
	return 0;
}

static int add_sources(struct live_run *run, const struct cli_args *cli)
{
	struct engine_sink process = { .process = live_process, .loop_thread = cli_announce_loop_thread,
				       .report = live_report, .ctx = run };
	sd_event_source *tick = NULL;
	struct engine_sink out;
	int ret;

	stream_sink_init(&run->out, stdout, stdout, cli->json, stop_on_closed_stdout, run);
	out = stream_sink(&run->out);
	ret = engine_add_sink(run->engine, &out);
	if (!ret)
		ret = engine_add_sink(run->engine, &process);
	if (!ret)
		ret = sd_event_add_time_relative(run->loop, NULL, CLOCK_MONOTONIC,
						 WAITING_NOTICE_US, 1000, on_waiting, run);
	if (!ret && !cli->json) {
		ret = sd_event_add_time_relative(run->loop, &tick, CLOCK_MONOTONIC, GROUP_TICK_US,
						 100000, on_group_tick, run);
		if (!ret)
			ret = sd_event_source_set_enabled(tick, SD_EVENT_ON);
		if (!ret)
			ret = sd_event_source_set_floating(tick, 1);
		sd_event_source_unref(tick);	/* the loop owns it now */
	}
	/* stdout may be a file or a terminal, which epoll refuses: then writes will tell */
	if (!ret)
		sd_event_add_io(run->loop, NULL, STDOUT_FILENO, 0, on_stdout_error, run);
	return ret < 0 ? ret : 0;
}

/* Inspects every target before any probe goes in: one that cannot be watched is an error. */
static struct py_target *inspect_all(const struct cli_args *cli)
{
	struct py_target *targets = calloc(cli->n_pids, sizeof(*targets));

	if (!targets) {
		fprintf(stderr, "aiocopd: out of memory\n");
		return NULL;
	}
	for (size_t i = 0; i < cli->n_pids; i++)
		if (cli_inspect(cli->pids[i], &targets[i])) {
			free(targets);
			return NULL;
		}
	return targets;
}

static int watch_all(struct live_run *run, const struct py_target *targets)
{
	char err[512] = "";

	for (size_t i = 0; i < run->n_pids; i++) {
		struct watched *w = engine_watch(run->engine, &targets[i], 0, err, sizeof(err));

		if (!w) {
			fprintf(stderr, "aiocopd: PID %d: %s\n", targets[i].pid,
				err[0] ? err : "cannot attach");
			return 1;
		}
		cli_print_attached(run->engine, w);
		run->remaining++;
	}
	return 0;
}

int cmd_live(int argc, char **argv)
{
	struct live_run run = {};
	struct py_target *targets;
	struct cli_args cli;
	int ret, why;

	ret = parse_args(argc, argv, &cli);
	if (ret)
		return ret;
	targets = inspect_all(&cli);
	if (!targets)
		return 1;
	run.pids = cli.pids;
	run.n_pids = cli.n_pids;
	ret = 1;
	run.summaries = calloc(cli.n_pids, sizeof(*run.summaries));
	if (!run.summaries)
		goto out;
	if (cli_event_loop(&run.loop)) {
		fprintf(stderr, "aiocopd: cannot set up the event loop\n");
		goto out;
	}
	run.engine = cli_engine_open(&cli, run.loop);
	if (!run.engine || add_sources(&run, &cli) || watch_all(&run, targets))
		goto out;
	if (cli_follow_execs(&run.execs, run.engine, run.loop, run.pids, run.n_pids,
			     &run.remaining) ||
	    cli_stop_after(run.loop, cli.duration_s))
		goto out;
	why = sd_event_loop(run.loop);
	engine_drain(run.engine);	/* what the ring still holds was reported before the end */
	if (why == STOP_TARGET_EXIT && !cli.json && run.n_pids == 1)
		fprintf(stderr, "aiocopd: PID %d exited\n", run.pids[0]);
	stream_sink_finish(&run.out);
	if (!cli.json && !run.out.closed)
		print_summary(&run);
	ret = 0;
out:
	stream_sink_finish(&run.out);	/* on an error: only frees */
	cli_exec_follow_close(&run.execs);
	cli_report_losses(run.engine);
	engine_close(run.engine);
	sd_event_unref(run.loop);
	for (size_t i = 0; run.summaries && i < run.n_pids; i++)
		summary_free(&run.summaries[i]);
	free(run.summaries);
	free(targets);
	return ret;
}
