/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the three commands (live monitor, trace, exec) share on the command line: number
 * parsing, usage errors, the privilege check, and inspecting the target with its errors.
 */
#ifndef AIOCOPD_CLI_H
#define AIOCOPD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "engine.h"
#include "follow.h"
#include "target.h"
#include "tracedoc.h"

#define EXIT_USAGE	2
#define CLI_MAX_PIDS	64	/* processes one live monitor watches (-p, repeatable) */

extern const char *cli_command;
int cli_usage_error(const char *fmt, const char *arg);
bool cli_parse_double(const char *s, double min, double max, double *out);
bool cli_parse_long(const char *s, long min, long max, long *out);

enum cli_command { CMD_LIVE = 1, CMD_TRACE = 2, CMD_EXEC = 4, CMD_ALL = 7 };

/* The command line of any command: what it did not take keeps its default. */
struct cli_args {
	struct engine_options engine;
	pid_t pid;			/* the first -p */
	pid_t pids[CLI_MAX_PIDS];	/* every -p, in order, each once */
	size_t n_pids;
	bool report_now;		/* exec: reports as they happen, not after CMD */
	double duration_s;		/* -d; 0: until stopped */
	bool json;
	const char *output;		/* -o */
	enum tracedoc_format format;
	int fail_on;			/* enum severity_level, -1: never fail */
	char **cmd;			/* exec: what follows the options */
};

/*
 * Adds the pids of one -p value ("PID" or "PID,PID,...") to args; a pid named twice is kept
 * once. Returns 0 or EXIT_USAGE (with the error printed).
 */
int cli_add_pids(struct cli_args *args, const char *value);
/* Parses the options `which` takes; -h prints usage and exits. Returns 0 or EXIT_USAGE. */
int cli_parse_args(enum cli_command which, int argc, char **argv, const char *usage,
		   struct cli_args *args);
/* Prints why and returns false when we lack a capability the probes need. */
bool cli_check_privileges(void);
/* Checks pid exists and our privileges, then inspects it; prints the error, returns 0 or 1. */
int cli_inspect(pid_t pid, struct py_target *t);
void cli_print_attached(const struct engine *e, const struct watched *w);
/* -v: "aiocopd: PID N: root ..., ... namespace ...; runtime opened through ..." on stderr. */
void cli_print_place(const struct watched *w);

/* How the commands end their event loop (the value sd_event_loop returns). */
enum cli_stop {
	STOP_SIGNAL = 0,		/* SIGINT or SIGTERM, or stdout closed */
	STOP_DURATION,
	STOP_TARGET_EXIT,
	STOP_TARGET_EXEC,		/* it replaced its program with one we do not watch */
};

/* The command's event loop, ended by SIGINT and SIGTERM (STOP_SIGNAL); SIGPIPE ignored. */
int cli_event_loop(sd_event **out);
/* Ends loop with STOP_DURATION after seconds (0: never). */
int cli_stop_after(sd_event *loop, double seconds);
/* The engine's log callback: "aiocopd: MSG" on stderr. */
void cli_log(void *ctx, int level, const char *msg);
/* Opens the engine with the command's options; prints the error, returns NULL on failure. */
struct engine *cli_engine_open(const struct cli_args *args, sd_event *loop);

/*
 * -p and trace follow their targets' execs: a target that becomes another supported CPython
 * is watched again (said on stderr); one that does not is lost. The loop ends with
 * STOP_TARGET_EXEC when no target is left (*remaining, shared with the command, which
 * counts exits down too).
 */
struct cli_exec_follow {
	struct follower *follower;
	struct engine *engine;
	sd_event *loop;
	size_t *remaining;		/* targets still watched */
};
int cli_follow_execs(struct cli_exec_follow *cf, struct engine *e, sd_event *loop,
		     const pid_t *pids, size_t n_pids, size_t *remaining);
void cli_exec_follow_close(struct cli_exec_follow *cf);

/* A sink's loop_thread: tells that an event loop was found after the attached line. */
void cli_announce_loop_thread(void *ctx, const struct watched *w, pid_t tid);
/* At the end: records BPF could not keep, if any (e may be NULL). */
void cli_report_losses(const struct engine *e);

int cmd_live(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_service(int argc, char **argv);

#endif
