// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd exec -- CMD`: run a command under monitoring and follow the CPython processes it
 * starts from their first instruction (follow.c). CMD's output is never broken mid-line:
 * reports are held (bounded) and written after CMD ended, unless --report-now, which writes
 * each on its own line as it comes. At the end: the reports, a summary of the processes that
 * had slow callbacks, and an exit status: CMD's own when it failed, else 3 when a slow
 * callback at or above --fail-on happened (the summary names the worst), else 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "array.h"
#include "cli.h"
#include "follow.h"
#include "sink_stream.h"
#include "summary.h"
#include "tracedoc.h"

#define EXIT_VIOLATION		3	/* a slow callback at or above --fail-on */
#define EXIT_CANNOT_RUN		127	/* CMD could not be started, as shells say */
#define HELD_TEXT_MAX		(8u << 20)	/* bytes of reports held until CMD ends */

static const char exec_usage[] =
"Usage: aiocopd exec [options] -- CMD [ARGS...]\n"
"Run CMD with every CPython process it starts watched from its first instruction.\n"
"\n"
"      --fail-on LEVEL     exit with status 3 when a slow callback of severity LEVEL\n"
"                          (low, medium or high) or above happened\n"
"  -o, --output FILE       also write a trace document (see aiocopd trace)\n"
"      --format FORMAT     of that document: json (default) or chrome\n"
"      --json              reports as JSON lines instead of text (on stderr)\n"
"      --report-now        write each report as it comes (on a line of its own), not\n"
"                          after CMD ended\n"
"  -t, --threshold-ms N    a callback is slow when it runs at least N ms (default 30)\n"
"      --trace-depth N     Python frames kept per stack (default 20, at most 64)\n"
"      --app-path PREFIX   the application's files start with PREFIX (repeatable):\n"
"                          entry points are their frames\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"  -v, --verbose           say which processes are watched and how\n"
"  -h, --help              show this help\n"
"\n"
"Reports and the summary go to stderr after CMD ended; CMD keeps stdout and stdin.\n"
"Exit status: CMD's own when it failed (128+N when a signal N ended it), else 3 when\n"
"--fail-on was met, else 0; 127 when CMD could not be run, 1 on aiocopd's own errors,\n"
"2 on usage errors.\n";

/* What the summary says of one watched process. */
struct exec_proc {
	pid_t pid;
	char cmdline[160];
	char version[32];
	uint64_t callbacks;		/* from its loops' statistics */
	struct proc_summary summary;
};

struct exec_run {
	const struct cli_args *cli;
	sd_event *loop;
	struct engine *engine;
	struct follower *follower;
	struct stream_sink out;
	struct tracedoc doc;
	bool have_doc;
	pid_t child;
	int status;			/* CMD's exit status, as a shell gives it */
	struct exec_proc *procs;	/* every process watched, in order */
	size_t n_procs, cap_procs;
	FILE *held;			/* reports until CMD ends (NULL: --report-now) */
	char *held_text;
	size_t held_len;
	uint64_t held_dropped;		/* reports past HELD_TEXT_MAX, not held */
	uint64_t violations;
	struct summary_entry blocker;	/* the longest violation (where NULL: none) */
	pid_t blocker_pid;
};

static int parse_exec_args(int argc, char **argv, struct cli_args *cli)
{
	int ret = cli_parse_args(CMD_EXEC, argc, argv, exec_usage, cli);

	if (ret)
		return ret;
	if (!cli->cmd[0])
		return cli_usage_error("%s", "exec: missing the command to run (after --)");
	cli->engine.armed_from_start = true;
	cli->engine.stats = true;
	return 0;
}

/* ---- the summary, kept as a sink of the engine ------------------------------------------ */

/* The newest entry of pid: a pid that exec'd another Python has one entry per program. */
static struct exec_proc *find_proc(struct exec_run *run, pid_t pid)
{
	for (size_t i = run->n_procs; i-- > 0;)
		if (run->procs[i].pid == pid)
			return &run->procs[i];
	return NULL;
}

static void add_proc(struct exec_run *run, const struct watched *w)
{
	struct exec_proc *p = array_room_for(run->procs, &run->cap_procs, run->n_procs,
					     sizeof(*p));

	if (!p)
		return;
	run->procs = p;
	p = &run->procs[run->n_procs++];
	memset(p, 0, sizeof(*p));
	p->pid = w->pid;
	snprintf(p->cmdline, sizeof(p->cmdline), "%s", w->cmdline);
	snprintf(p->version, sizeof(p->version), "%s", w->target.version);
}

/* A fork that exec'd before it ran a callback of its own was the new program's start only. */
static void forget_if_empty(struct exec_run *run, pid_t pid)
{
	struct exec_proc *p = find_proc(run, pid);

	if (!p)
		return;
	if (p->callbacks || summary_any_slow(&p->summary))
		return;
	summary_free(&p->summary);
	memmove(p, p + 1, (size_t)(&run->procs[run->n_procs] - (p + 1)) * sizeof(*p));
	run->n_procs--;
}

static void exec_process(void *ctx, const struct watched *w, enum process_change change)
{
	struct exec_run *run = ctx;

	if (change == PROCESS_UNWATCHED)
		forget_if_empty(run, w->pid);
	if (change != PROCESS_WATCHED)
		return;
	add_proc(run, w);
	if (!run->cli->engine.verbose)
		return;
	fprintf(stderr, "aiocopd: watching PID %d (CPython %s)\n", w->pid, w->target.version);
	cli_print_place(w);
}

static void exec_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct exec_run *run = ctx;
	struct exec_proc *p = find_proc(run, w->pid);

	/* a slow iteration has no level: --fail-on is about callbacks */
	if (r->exceeded && !r->slow_iteration && run->cli->fail_on >= 0 &&
	    (int)r->level >= run->cli->fail_on) {
		run->violations++;
		if (!run->blocker.where || r->elapsed_ms > run->blocker.elapsed_ms) {
			summary_entry_set(&run->blocker, r);
			run->blocker_pid = w->pid;
		}
	}
	if (p)
		summary_note(&p->summary, r);
}

/* Held reports go to the stream sink only while they fit in HELD_TEXT_MAX. */
static void held_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct exec_run *run = ctx;
	struct engine_sink out = stream_sink(&run->out);

	fflush(run->held);		/* held_len is brought up to date by a flush */
	if (run->held_len >= HELD_TEXT_MAX) {
		run->held_dropped++;
		return;
	}
	out.report(out.ctx, w, r);
}

/* --report-now on a terminal: a report starts on a line of its own, whatever CMD wrote. */
static void own_line_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct exec_run *run = ctx;
	struct engine_sink out = stream_sink(&run->out);

	fputc('\n', stderr);
	out.report(out.ctx, w, r);
}

static void exec_loop_stats(void *ctx, const struct watched *w, pid_t tid, pid_t ns_tid,
			    const struct loop_stats *s)
{
	struct exec_proc *p = find_proc(ctx, w->pid);

	if (p)
		p->callbacks += s->callbacks;
}

/* The reports held while CMD ran, then what was too much to hold. */
static void write_held(struct exec_run *run)
{
	if (!run->held)
		return;
	stream_sink_finish(&run->out);
	fflush(run->held);
	fwrite(run->held_text, 1, run->held_len, stderr);
	if (run->held_dropped)
		fprintf(stderr, "aiocopd: %llu more report(s) not shown (over %u MiB of reports); "
			"the summary counts them\n", (unsigned long long)run->held_dropped,
			HELD_TEXT_MAX >> 20);
}

static void print_process(const struct exec_proc *p)
{
	fprintf(stderr, "  PID %d ", p->pid);
	report_put_text(stderr, p->cmdline);	/* the target's own words */
	fprintf(stderr, " (CPython %s): %llu callback(s) seen, ", p->version,
		(unsigned long long)p->callbacks);
	summary_write_counts(stderr, &p->summary);
	fputc('\n', stderr);
	summary_write_worst(stderr, &p->summary, "    ");
}

/* The processes that had slow callbacks, one block each; the quiet ones only counted. */
static void print_summary(const struct exec_run *run, int cmd_status, int exit_status)
{
	const struct cli_args *cli = run->cli;
	size_t slow = 0;

	for (size_t i = 0; i < run->n_procs; i++)
		slow += summary_any_slow(&run->procs[i].summary);
	fputs("aiocopd: ", stderr);
	report_put_text(stderr, cli->cmd[0]);
	fprintf(stderr, " exited with status %d; %zu CPython process(es) watched, %zu with slow "
		"callbacks\n", cmd_status, run->n_procs, slow);
	for (size_t i = 0; i < run->n_procs; i++)
		if (summary_any_slow(&run->procs[i].summary))
			print_process(&run->procs[i]);
	if (slow && slow < run->n_procs)
		fprintf(stderr, "  %zu other process(es): no slow callback\n", run->n_procs - slow);
	if (!run->violations)
		return;
	fprintf(stderr, "aiocopd: %llu slow callback(s) at or above '%s': exit status %d%s; "
		"the worst: %.1fms %s: ", (unsigned long long)run->violations,
		severity_level_name(cli->fail_on), exit_status,
		cmd_status ? " (the command's own: it failed)" : "", run->blocker.elapsed_ms,
		severity_level_name(run->blocker.level));
	report_put_text(stderr, run->blocker.what);
	fputs(" at ", stderr);
	report_put_text(stderr, run->blocker.where);
	fprintf(stderr, " (PID %d)\n", run->blocker_pid);
}

/* ---- the command ------------------------------------------------------------------------ */

/*
 * The child waits on go[0] until its pid is followed, so its own exec is caught; if exec
 * fails it sends errno up the close-on-exec pipe fail[1].
 */
static pid_t start_command(char **cmd, int go[2], int fail[2], const sigset_t *oldmask)
{
	pid_t pid = fork();
	char c;
	int err;

	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	signal(SIGPIPE, SIG_DFL);
	close(go[1]);
	close(fail[0]);
	if (read(go[0], &c, 1) != 1)
		_exit(EXIT_CANNOT_RUN);
	close(go[0]);
	execvp(cmd[0], cmd);
	err = errno;
	if (write(fail[1], &err, sizeof(err)) < 0)
		_exit(EXIT_CANNOT_RUN);
	_exit(EXIT_CANNOT_RUN);
}

/* CMD ended: its status as a shell would give it, then the loop ends. */
static int on_child(sd_event_source *s, const siginfo_t *si, void *ctx)
{
	struct exec_run *run = ctx;

	run->status = si->si_code == CLD_EXITED ? si->si_status : 128 + si->si_status;
	return sd_event_exit(run->loop, 0);
}

/* Forwards SIGTERM and SIGHUP, and a SIGINT a process sent (a terminal's reaches CMD). */
static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *ctx)
{
	struct exec_run *run = ctx;

	if (si->ssi_signo != SIGINT || si->ssi_code == SI_USER)
		kill(run->child, si->ssi_signo);
	return 0;
}

static int exec_event_loop(struct exec_run *run, sigset_t *oldmask)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP };
	sigset_t mask;
	int ret;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&mask, forwarded[i]);
	sigprocmask(SIG_BLOCK, &mask, oldmask);
	ret = sd_event_new(&run->loop);
	for (size_t i = 0; ret >= 0 && i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		ret = sd_event_add_signal(run->loop, NULL, forwarded[i], on_signal, run);
	return ret < 0 ? ret : 0;
}

static int add_sinks(struct exec_run *run)
{
	const struct cli_args *cli = run->cli;
	struct engine_sink summary = { .report = exec_report, .loop_stats = exec_loop_stats,
				       .process = exec_process, .ctx = run };
	struct engine_sink out, doc;
	int ret;

	/* reports go to stderr, held until CMD ends unless --report-now: CMD keeps stdout */
	if (!cli->report_now) {
		run->held = open_memstream(&run->held_text, &run->held_len);
		if (!run->held)
			return -ENOMEM;
	}
	stream_sink_init(&run->out, run->held ? run->held : stderr, stderr, cli->json, NULL, NULL);
	out = stream_sink(&run->out);
	if (run->held)
		out = (struct engine_sink){ .report = held_report, .ctx = run };
	else if (!cli->json && isatty(STDERR_FILENO))
		out = (struct engine_sink){ .report = own_line_report, .ctx = run };
	ret = engine_add_sink(run->engine, &summary);
	if (!ret)
		ret = engine_add_sink(run->engine, &out);
	if (!ret && run->have_doc) {
		doc = tracedoc_sink(&run->doc);
		ret = engine_add_sink(run->engine, &doc);
	}
	return ret;
}

static int write_document(struct exec_run *run, double start, int fd, const char *tmp)
{
	const struct cli_args *cli = run->cli;
	struct json_object *meta, *doc, *argv = json_object_new_array();
	int ret;

	tracedoc_set_lost(&run->doc, engine_lost(run->engine, LOST_RING_BUFFER),
			  engine_lost(run->engine, LOST_CALLBACK_CAP));
	meta = tracedoc_metadata(&cli->engine, cli->duration_s, cli->format, start,
				 engine_wall_time(run->engine, engine_now_ns()), "command_exited");
	for (char **a = cli->cmd; *a; a++)
		json_object_array_add(argv, json_text(*a));
	json_object_object_add(meta, "pid", json_object_new_int(run->child));
	json_object_object_add(meta, "command_line", argv);
	doc = tracedoc_build(&run->doc, meta, cli->format);
	ret = tracedoc_write_atomic(doc, tmp, fd, cli->output);
	json_object_put(doc);
	if (ret)
		fprintf(stderr, "aiocopd: cannot write %s: %s\n", cli->output, strerror(-ret));
	return ret;
}

/* Starts CMD, follows it, and runs until it exits; returns 0 or EXIT_CANNOT_RUN. */
static int run_command(struct exec_run *run, const sigset_t *oldmask)
{
	int go[2] = { -1, -1 }, fail[2] = { -1, -1 }, exec_errno = 0, ret = 1;

	if (pipe2(go, O_CLOEXEC) || pipe2(fail, O_CLOEXEC)) {
		fprintf(stderr, "aiocopd: %s\n", strerror(errno));
		goto out;
	}
	run->child = start_command(run->cli->cmd, go, fail, oldmask);
	if (run->child < 0) {
		fprintf(stderr, "aiocopd: cannot start %s: %s\n", run->cli->cmd[0],
			strerror(errno));
		goto out;
	}
	close(fail[1]);
	fail[1] = -1;
	if (follow_family(run->follower, run->child))
		fprintf(stderr, "aiocopd: cannot follow PID %d: %s\n", run->child, strerror(errno));
	if (sd_event_add_child(run->loop, NULL, run->child, WEXITED, on_child, run) < 0 ||
	    write(go[1], "g", 1) != 1) {
		kill(run->child, SIGKILL);
		waitpid(run->child, NULL, 0);
		goto out;
	}
	sd_event_loop(run->loop);
	follow_release_all(run->follower);
	ret = 0;
	if (read(fail[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno)) {
		fprintf(stderr, "aiocopd: cannot run %s: %s\n", run->cli->cmd[0],
			strerror(exec_errno));
		ret = EXIT_CANNOT_RUN;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (fail[i] >= 0)
			close(fail[i]);
	}
	return ret;
}

int cmd_exec(int argc, char **argv)
{
	struct cli_args cli;
	struct exec_run run = { .cli = &cli };
	char tmp[PATH_MAX + 32];
	int fd = -1, ret;
	sigset_t oldmask;
	double start;

	ret = parse_exec_args(argc, argv, &cli);
	if (ret)
		return ret;
	if (!cli_check_privileges())
		return 1;
	if (cli.output) {
		fd = tracedoc_open_tmp(cli.output, tmp, sizeof(tmp));
		if (fd < 0) {
			fprintf(stderr, "aiocopd: cannot write %s: %s\n", cli.output,
				strerror(-fd));
			return 1;
		}
	}
	ret = 1;
	if (exec_event_loop(&run, &oldmask)) {
		fprintf(stderr, "aiocopd: cannot set up the event loop\n");
		goto out;
	}
	run.engine = cli_engine_open(&cli, run.loop);
	if (!run.engine)
		goto out;
	if (cli.output) {
		if (tracedoc_init(&run.doc, engine_now_ns()))
			goto out;
		run.have_doc = true;
	}
	start = engine_wall_time(run.engine, engine_now_ns());
	if (add_sinks(&run) || follow_open(&run.follower, run.engine, NULL))
		goto out;
	ret = run_command(&run, &oldmask);
	if (ret)
		goto out;
	engine_flush_stats(run.engine);
	write_held(&run);
	ret = summary_exit_status(run.status, run.violations, EXIT_VIOLATION);
	if (cli.output) {
		if (write_document(&run, start, fd, tmp))
			ret = ret ? ret : 1;
		fd = -1;
	}
	print_summary(&run, run.status, ret);
out:
	follow_close(run.follower);
	cli_report_losses(run.engine);
	engine_close(run.engine);	/* before the document its sink fills */
	if (run.have_doc)
		tracedoc_free(&run.doc);
	sd_event_unref(run.loop);
	for (size_t i = 0; i < run.n_procs; i++)
		summary_free(&run.procs[i].summary);
	free(run.procs);
	free(run.blocker.where);
	stream_sink_finish(&run.out);
	if (run.held)
		fclose(run.held);
	free(run.held_text);
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	return ret;
}
