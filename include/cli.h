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
#include "target.h"
#include "tracedoc.h"

#define EXIT_USAGE	2

extern const char *cli_command;
int cli_usage_error(const char *fmt, const char *arg);
bool cli_parse_double(const char *s, double min, double max, double *out);
bool cli_parse_long(const char *s, long min, long max, long *out);
int cli_parse_format(const char *arg, enum tracedoc_format *out);
/* What the commands share besides the engine's options. */
struct cli_common {
	struct engine_options engine;
	double duration_s;		/* 0: until stopped */
	bool json;
};

void cli_default_options(struct cli_common *common);
/* The options the commands share (-p, -d, -t, ...); false when opt is not one of them. */
bool cli_common_option(int opt, const char *arg, struct cli_common *common, pid_t *pid,
		       int *ret);
/* Prints why and returns false when we lack a capability the probes need. */
bool cli_check_privileges(void);
/* Checks pid exists and our privileges, then inspects it; prints the error, returns 0 or 1. */
int cli_inspect(pid_t pid, struct py_target *t);
void cli_print_attached(const struct engine *e, const struct watched *w);

/* How the commands end their event loop (the value sd_event_loop returns). */
enum cli_stop {
	STOP_SIGNAL = 0,		/* SIGINT or SIGTERM, or stdout closed */
	STOP_DURATION,
	STOP_TARGET_EXIT,
};

/* The command's event loop, ended by SIGINT and SIGTERM (STOP_SIGNAL); SIGPIPE ignored. */
int cli_event_loop(sd_event **out);
/* Ends loop with STOP_DURATION after seconds (0: never). */
int cli_stop_after(sd_event *loop, double seconds);
/* The engine's log callback: "aiocopd: MSG" on stderr; LOG_INFO only with -v (ctx: bool *). */
void cli_log(void *ctx, int level, const char *msg);
/* Opens the engine with the command's options; prints the error, returns NULL on failure. */
struct engine *cli_engine_open(const struct cli_common *common, sd_event *loop);

/* A sink's loop_thread: tells that an event loop was found after the attached line. */
void cli_announce_loop_thread(void *ctx, const struct watched *w, pid_t tid);
/* At the end: records BPF could not keep, if any (e may be NULL). */
void cli_report_losses(const struct engine *e);

int cmd_live(int argc, char **argv);
int cmd_trace(int argc, char **argv);
int cmd_exec(int argc, char **argv);

#endif
