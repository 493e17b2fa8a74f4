// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd exec -- CMD`: run a command under monitoring from its first instruction and
 * follow the CPython processes it starts. BPF stops each exec'd family process before its
 * first instruction; we probe its ELF entry point, where the dynamic loader has mapped
 * libpython, and there decide whether it is CPython and attach before it runs any Python.
 * At the end: a summary per process, and an exit status that says whether a slow callback
 * at or above --fail-on happened.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "elf_file.h"
#include "tracedoc.h"

#define EXIT_VIOLATION		3	/* a slow callback at or above --fail-on */
#define EXIT_CANNOT_RUN		127	/* CMD could not be started, as shells say */
#define MAX_STOPPED		64	/* processes waiting at their entry point at once */

static const char exec_usage[] =
"Usage: aiocopd exec [options] -- CMD [ARGS...]\n"
"Run CMD with every CPython process it starts watched from its first instruction.\n"
"\n"
"      --fail-on LEVEL     exit with status 3 when a slow callback of severity LEVEL\n"
"                          (low, medium or high) or above happened\n"
"  -o, --output FILE       also write a trace document (see aiocopd trace)\n"
"      --format FORMAT     of that document: json (default) or chrome\n"
"      --json              reports as JSON lines instead of text (on stderr)\n"
"  -t, --threshold-ms N    a callback is slow when it runs at least N ms (default 30)\n"
"      --trace-depth N     Python frames kept per stack (default 20, at most 64)\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"  -v, --verbose           say which processes are watched and how\n"
"  -h, --help              show this help\n"
"\n"
"Reports and the summary go to stderr; CMD keeps stdout and stdin.\n"
"Exit status: CMD's own (128+N when a signal N ended it), or 3 when --fail-on was met,\n"
"127 when CMD could not be run, 1 on aiocopd's own errors, 2 on usage errors.\n";

static const struct option exec_options[] = {
	{ "fail-on",		required_argument,	NULL, 'f' },
	{ "output",		required_argument,	NULL, 'o' },
	{ "format",		required_argument,	NULL, 'F' },
	{ "json",		no_argument,		NULL, 'J' },
	{ "threshold-ms",	required_argument,	NULL, 't' },
	{ "trace-depth",	required_argument,	NULL, 'T' },
	{ "all",		no_argument,		NULL, 'A' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "help",		no_argument,		NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct exec_cli {
	int fail_on;			/* enum severity_level, -1: never fail */
	const char *output;
	enum tracedoc_format format;
	struct monitor_options mon;
	char **cmd;
};

/* A process stopped at its entry point's probe until we looked at it. */
struct entry_stop {
	pid_t pid;
	struct ulink *link;
};

struct exec_run {
	const struct exec_cli *cli;
	struct tracedoc doc;
	bool have_doc;
	pid_t child;
	struct entry_stop stops[MAX_STOPPED];
	uint64_t violations;
};

static int parse_level(const char *arg, int *out)
{
	for (int l = LEVEL_LOW; l <= LEVEL_HIGH; l++)
		if (!strcmp(arg, severity_level_name(l))) {
			*out = l;
			return 0;
		}
	return cli_usage_error("invalid level '%s' (low, medium or high)", arg);
}

static int parse_exec_args(int argc, char **argv, struct exec_cli *cli)
{
	pid_t unused_pid = 0;	/* exec takes no -p: getopt never returns it */
	int c, ret;

	cli_default_options(&cli->mon);
	cli->fail_on = -1;
	optind = 1;
	/* "+": the first word that is not an option starts CMD */
	while ((c = getopt_long(argc, argv, "+o:t:vh", exec_options, NULL)) != -1) {
		if (cli_common_option(c, optarg, &cli->mon, &unused_pid, &ret)) {
			if (ret)
				return ret;
			continue;
		}
		switch (c) {
		case 'f':
			ret = parse_level(optarg, &cli->fail_on);
			if (ret)
				return ret;
			break;
		case 'o':
			cli->output = optarg;
			break;
		case 'F':
			ret = cli_parse_format(optarg, &cli->format);
			if (ret)
				return ret;
			break;
		case 'J':
			cli->mon.json = true;
			break;
		case 'h':
			fputs(exec_usage, stdout);
			exit(0);
		default:
			fprintf(stderr, "Try 'aiocopd exec --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage_error("%s", "exec: missing the command to run (after --)");
	cli->cmd = argv + optind;
	cli->mon.armed_from_start = true;
	cli->mon.stats = true;
	return 0;
}

/* ---- following the processes ---------------------------------------------------------- */

static void resume(pid_t pid)
{
	kill(pid, SIGCONT);
}

static struct entry_stop *find_stop(struct exec_run *run, pid_t pid, bool create)
{
	struct entry_stop *free_slot = NULL;

	for (size_t i = 0; i < MAX_STOPPED; i++) {
		if (run->stops[i].pid == pid)
			return &run->stops[i];
		if (!run->stops[i].pid && !free_slot)
			free_slot = &run->stops[i];
	}
	return create ? free_slot : NULL;
}

/* Just exec'd, stopped by BPF: probe its entry point, then let the loader run. */
static void on_exec(struct monitor *m, struct exec_run *run, pid_t pid)
{
	struct watched *old = monitor_find(m, pid);
	struct elf_file *ef = NULL;
	struct entry_stop *stop;
	uint64_t offset;
	char exe[64];

	if (old)
		monitor_forget(m, old);		/* a Python process that exec'd something else */
	snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
	stop = find_stop(run, pid, true);
	if (stop && elf_file_open(exe, &ef) == 0 && elf_file_entry_offset(ef, &offset) == 0) {
		probes_release_stop(&m->probes, stop->link);
		stop->link = probes_stop_at_entry(&m->probes, pid, exe, offset);
		stop->pid = stop->link ? pid : 0;
	}
	if (m->opt->verbose && (!stop || !stop->link))
		fprintf(stderr, "aiocopd: cannot probe the entry point of PID %d: it runs "
			"unwatched\n", pid);
	elf_file_close(ef);
	resume(pid);
}

static void watching(struct monitor *m, struct exec_run *run, struct watched *w)
{
	if (run->have_doc)
		tracedoc_add_process(&run->doc, &w->target);
	if (m->opt->verbose)
		fprintf(stderr, "aiocopd: watching PID %d (CPython %s)\n", w->target.pid,
			w->target.version);
}

/* At its entry point, libraries mapped: attach if it is CPython, then let it go. */
static void on_entry(struct monitor *m, struct exec_run *run, pid_t pid)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	struct entry_stop *stop = find_stop(run, pid, false);
	struct py_target t;
	struct watched *w;
	char err[512];

	if (stop) {
		probes_release_stop(&m->probes, stop->link);
		*stop = (struct entry_stop){ 0 };
	}
	if (target_inspect(pid, &topts, &t, err, sizeof(err)) == 0) {
		w = monitor_add(m, &t, err, sizeof(err));
		if (w)
			watching(m, run, w);
		else
			fprintf(stderr, "aiocopd: PID %d runs unwatched: %s\n", pid, err);
	} else if (t.version[0] && strstr(err, "unsupported")) {
		fprintf(stderr, "aiocopd: PID %d runs unwatched: %s\n", pid, err);
	}
	resume(pid);
}

/* A watched process forked: the child runs the same interpreter at the same addresses. */
static void on_fork(struct monitor *m, struct exec_run *run, pid_t pid, pid_t parent)
{
	struct watched *p = monitor_find(m, parent), *w;
	struct py_target t;
	char err[512];

	if (!p)
		return;
	t = p->target;
	t.pid = pid;
	snprintf(t.open_path, sizeof(t.open_path), "/proc/%d/root%s", pid, t.runtime_path);
	t.layout = &t.layout_copy;
	w = monitor_add(m, &t, err, sizeof(err));
	if (w)
		watching(m, run, w);
	else if (m->opt->verbose)
		fprintf(stderr, "aiocopd: PID %d (fork of %d) runs unwatched: %s\n", pid, parent,
			err);
}

static void exec_process(struct monitor *m, const struct event_process *ev)
{
	struct exec_run *run = m->user;

	switch (ev->h.type) {
	case EVENT_EXEC:
		on_exec(m, run, ev->h.pid);
		break;
	case EVENT_ENTRY:
		on_entry(m, run, ev->h.pid);
		break;
	case EVENT_FORK:
		on_fork(m, run, ev->h.pid, ev->parent);
		break;
	}
}

static void exec_report(struct monitor *m, struct watched *w, const struct report *r)
{
	struct exec_run *run = m->user;

	if (r->exceeded && run->cli->fail_on >= 0 && (int)r->level >= run->cli->fail_on)
		run->violations++;
	if (m->opt->json)
		report_write_json(stderr, r);
	else
		report_write_text(stderr, r);
	if (run->have_doc)
		tracedoc_add_report(&run->doc, r);
}

static void exec_iteration(struct monitor *m, const struct event_iteration *ev)
{
	struct exec_run *run = m->user;

	if (run->have_doc)
		tracedoc_add_iteration(&run->doc, ev);
}

/* ---- the command ------------------------------------------------------------------------ */

/*
 * The child waits on go[0] until its pid is in the family map, so its own exec is caught;
 * if exec fails it sends errno up the close-on-exec pipe fail[1].
 */
static pid_t start_command(char **cmd, int go[2], int fail[2], const sigset_t *oldmask)
{
	pid_t pid = fork();
	char c;
	int err;

	if (pid != 0)
		return pid;
	sigprocmask(SIG_SETMASK, oldmask, NULL);
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

static int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* Callbacks per watched process (index as in m->procs), from one pass over the loop stats. */
struct callback_counts {
	struct monitor *m;
	uint64_t *per_proc;
};

static void add_callbacks(void *ctx, pid_t tid, const struct loop_stats *s)
{
	struct callback_counts *cc = ctx;

	for (size_t i = 0; i < cc->m->n_procs; i++)
		if (cc->m->procs[i]->target.pid == (pid_t)s->pid) {
			cc->per_proc[i] += s->callbacks;
			return;
		}
}

static void print_summary(struct monitor *m, const struct exec_run *run, int status)
{
	const struct exec_cli *cli = run->cli;
	struct callback_counts cc = { m, calloc(m->n_procs + 1, sizeof(uint64_t)) };

	if (cc.per_proc)
		probes_loop_stats(&m->probes, add_callbacks, &cc);
	fprintf(stderr, "aiocopd: %s exited with status %d; %zu CPython process(es) watched\n",
		cli->cmd[0], status, m->n_procs);
	for (size_t i = 0; i < m->n_procs; i++) {
		struct watched *w = m->procs[i];
		fprintf(stderr, "  PID %d %s (CPython %s): %llu callback(s) seen, slow: %llu high, "
			"%llu medium, %llu low\n", w->target.pid, w->cmdline, w->target.version,
			(unsigned long long)(cc.per_proc ? cc.per_proc[i] : 0),
			(unsigned long long)w->reports_by_level[LEVEL_HIGH],
			(unsigned long long)w->reports_by_level[LEVEL_MEDIUM],
			(unsigned long long)w->reports_by_level[LEVEL_LOW]);
		for (size_t k = 0; k < MONITOR_WORST && w->worst[k].where; k++)
			fprintf(stderr, "    %ux, worst %.1fms %s: %s at %s\n", w->worst[k].count,
				w->worst[k].elapsed_ms, severity_level_name(w->worst[k].level),
				w->worst[k].what, w->worst[k].where);
	}
	if (run->violations)
		fprintf(stderr, "aiocopd: %llu slow callback(s) at or above '%s': exit status %d\n",
			(unsigned long long)run->violations, severity_level_name(cli->fail_on),
			EXIT_VIOLATION);
	free(cc.per_proc);
}

/* Forwards SIGTERM, and SIGINT that a process sent (a terminal's reaches CMD by itself). */
static void forward_signal(pid_t child, const struct signalfd_siginfo *si)
{
	if (si->ssi_signo == SIGTERM || si->ssi_signo == SIGHUP ||
	    (si->ssi_signo == SIGINT && si->ssi_code == SI_USER))
		kill(child, si->ssi_signo);
}

/* Runs the monitor until CMD exits; returns its wait status. */
static int supervise(struct monitor *m, struct exec_run *run, int sfd)
{
	struct pollfd fds[2] = {
		{ .fd = sfd, .events = POLLIN },
		{ .fd = probes_ring_fd(&m->probes), .events = POLLIN },
	};
	int status = 0;

	for (;;) {
		struct signalfd_siginfo si;

		if (poll(fds, 2, 100) < 0 && errno != EINTR)
			break;
		monitor_drain(m);
		monitor_retire_exited(m);
		while ((fds[0].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si))
			if (si.ssi_signo != SIGCHLD)
				forward_signal(run->child, &si);
		if (waitpid(run->child, &status, WNOHANG) == run->child)
			break;
		fds[0].revents = 0;
	}
	monitor_drain(m);
	return status;
}

static void resume_all(struct monitor *m, struct exec_run *run)
{
	for (size_t i = 0; i < MAX_STOPPED; i++) {
		if (!run->stops[i].pid)
			continue;
		probes_release_stop(&m->probes, run->stops[i].link);
		resume(run->stops[i].pid);
		run->stops[i] = (struct entry_stop){ 0 };
	}
}

static int write_document(struct monitor *m, struct exec_run *run, double start, int fd,
			  const char *tmp)
{
	const struct exec_cli *cli = run->cli;
	struct json_object *meta, *doc, *argv = json_object_new_array();
	int ret;

	tracedoc_collect(&run->doc, m);
	meta = tracedoc_metadata(&cli->mon, cli->format, start,
				 monitor_wall_time(m, monitor_now_ns()), "command_exited");
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

int cmd_exec(int argc, char **argv)
{
	struct exec_cli cli = {};
	struct exec_run run = { .cli = &cli };
	char err[512] = "", tmp[PATH_MAX + 32];
	int go[2] = { -1, -1 }, fail[2] = { -1, -1 };
	int fd = -1, sfd = -1, status, ret, exec_errno = 0;
	sigset_t mask, oldmask;
	struct monitor mon;
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
	if (monitor_open(&mon, &cli.mon, err, sizeof(err))) {
		fprintf(stderr, "aiocopd: %s\n", err);
		goto fail;
	}
	mon.user = &run;
	mon.on_report = exec_report;
	mon.on_iteration = exec_iteration;
	mon.on_process = exec_process;
	mon.out = stderr;
	start = monitor_wall_time(&mon, monitor_now_ns());
	if (cli.output) {
		if (tracedoc_init(&run.doc, monitor_now_ns()))
			goto fail;
		run.have_doc = true;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &oldmask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || pipe2(go, O_CLOEXEC) || pipe2(fail, O_CLOEXEC)) {
		fprintf(stderr, "aiocopd: %s\n", strerror(errno));
		goto fail;
	}
	run.child = start_command(cli.cmd, go, fail, &oldmask);
	if (run.child < 0) {
		fprintf(stderr, "aiocopd: cannot start %s: %s\n", cli.cmd[0], strerror(errno));
		goto fail;
	}
	close(go[0]);
	close(fail[1]);
	go[0] = fail[1] = -1;
	if (probes_follow(&mon.probes, run.child))
		fprintf(stderr, "aiocopd: cannot follow PID %d: %s\n", run.child, strerror(errno));
	if (write(go[1], "g", 1) != 1)
		kill(run.child, SIGKILL);
	close(go[1]);
	go[1] = -1;
	status = supervise(&mon, &run, sfd);
	if (read(fail[0], &exec_errno, sizeof(exec_errno)) == sizeof(exec_errno)) {
		fprintf(stderr, "aiocopd: cannot run %s: %s\n", cli.cmd[0], strerror(exec_errno));
		resume_all(&mon, &run);
		ret = EXIT_CANNOT_RUN;
		goto out;
	}
	resume_all(&mon, &run);
	ret = exit_status_of(status);
	print_summary(&mon, &run, ret);
	if (cli.output) {
		if (write_document(&mon, &run, start, fd, tmp))
			ret = ret ? ret : 1;
		fd = -1;
	}
	if (run.violations)
		ret = EXIT_VIOLATION;
out:
	if (run.have_doc)
		tracedoc_free(&run.doc);
	monitor_close(&mon);
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	close(fail[0]);
	close(sfd);
	return ret;
fail:
	ret = 1;
	for (int i = 0; i < 2; i++) {
		if (go[i] >= 0)
			close(go[i]);
		if (fail[i] >= 0)
			close(fail[i]);
	}
	fail[0] = -1;
	goto out;
}
