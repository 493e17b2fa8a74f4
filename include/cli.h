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

#include "monitor.h"
#include "target.h"
#include "tracedoc.h"

#define EXIT_USAGE	2

extern const char *cli_command;
int cli_usage_error(const char *fmt, const char *arg);
bool cli_parse_double(const char *s, double min, double max, double *out);
bool cli_parse_long(const char *s, long min, long max, long *out);
int cli_parse_format(const char *arg, enum tracedoc_format *out);
void cli_default_options(struct monitor_options *mon);
/* The options the commands share (-p, -d, -t, ...); false when opt is not one of them. */
bool cli_common_option(int opt, const char *arg, struct monitor_options *mon, pid_t *pid,
		       int *ret);
/* Prints why and returns false when we lack a capability the probes need. */
bool cli_check_privileges(void);
/* Checks pid exists and our privileges, then inspects it; prints the error, returns 0 or 1. */
int cli_inspect(pid_t pid, struct py_target *t);
void cli_print_attached(const struct monitor *m, const struct watched *w);

int cmd_trace(int argc, char **argv);
int cmd_exec(int argc, char **argv);

#endif
