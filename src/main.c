// SPDX-License-Identifier: GPL-2.0
/*
 * aiocopd command line: the live monitor (`aiocopd -p PID`), and the dispatch to
 * `aiocopd trace` and `aiocopd exec` (SPEC sections 1 and 2). The work is in monitor.c.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
"Usage: aiocopd -p PID [options]\n"
"       aiocopd trace -p PID -d SECONDS -o FILE [--format json|chrome] [options]\n"
"       aiocopd exec [--fail-on LEVEL] [-o FILE] [--format json|chrome] [options] -- CMD [ARGS...]\n"
"Find what freezes a Python asyncio event loop, from outside the process.\n"
"\n"
"  -p, --pid PID           the CPython process to watch\n"
"  -t, --threshold-ms N    a callback is slow when it runs at least N ms (default 30)\n"
"      --trace-depth N     Python frames kept per stack (default 20, at most 64)\n"
"      --all               also report fast callbacks that performed blocking operations\n"
"      --json              one JSON object per line on stdout instead of text\n"
"  -d, --duration S        stop after S seconds\n"
"  -v, --verbose           say how the target was inspected\n"
"  -h, --help              show this help ('aiocopd trace --help', 'aiocopd exec --help')\n"
"      --version           show the version\n"
"\n"
"Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE.\n"
"Exit status: 0 after Ctrl-C, SIGTERM, --duration or the target's exit; 1 on errors;\n"
"2 on usage errors. See aiocopd(8).\n";

enum { OPT_TRACE_DEPTH = 'T', OPT_ALL = 'A', OPT_JSON = 256, OPT_VERSION };

static const struct option long_options[] = {
	{ "pid",		required_argument,	NULL, 'p' },
	{ "threshold-ms",	required_argument,	NULL, 't' },
	{ "trace-depth",	required_argument,	NULL, OPT_TRACE_DEPTH },
	{ "all",		no_argument,		NULL, OPT_ALL },
	{ "json",		no_argument,		NULL, OPT_JSON },
	{ "duration",		required_argument,	NULL, 'd' },
	{ "verbose",		no_argument,		NULL, 'v' },
	{ "help",		no_argument,		NULL, 'h' },
	{ "version",		no_argument,		NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

struct cli {
	pid_t pid;
	struct monitor_options mon;
};

static int parse_args(int argc, char **argv, struct cli *cli)
{
	int c, ret;

	cli_default_options(&cli->mon);
	while ((c = getopt_long(argc, argv, "p:t:d:vh", long_options, NULL)) != -1) {
		if (cli_common_option(c, optarg, &cli->mon, &cli->pid, &ret)) {
			if (ret)
				return ret;
			continue;
		}
		switch (c) {
		case OPT_JSON:
			cli->mon.json = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case OPT_VERSION:
			printf("aiocopd %s\n", AIOCOPD_VERSION);
			exit(0);
		default:
			fprintf(stderr, "Try 'aiocopd --help' for more information.\n");
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	if (!cli->pid)
		return cli_usage_error("%s", "missing -p PID");
	return 0;
}

static int live(int argc, char **argv)
{
	struct py_target target;
	struct monitor mon;
	struct watched *w;
	struct cli cli = {};
	char err[512] = "";
	int ret;

	ret = parse_args(argc, argv, &cli);
	if (ret)
		return ret;
	ret = cli_inspect(cli.pid, &target);
	if (ret)
		return ret;
	ret = monitor_open(&mon, &cli.mon, err, sizeof(err));
	w = ret ? NULL : monitor_add(&mon, &target, err, sizeof(err));
	if (!w) {
		fprintf(stderr, "aiocopd: %s\n", err[0] ? err : "cannot attach");
		monitor_close(&mon);
		return 1;
	}
	cli_print_attached(&mon, w);
	if (monitor_run(&mon) == STOP_TARGET_EXIT && !cli.mon.json)
		fprintf(stderr, "aiocopd: PID %d exited\n", target.pid);
	monitor_close(&mon);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "trace")) {
		cli_command = "aiocopd trace";
		return cmd_trace(argc - 1, argv + 1);
	}
	if (argc > 1 && !strcmp(argv[1], "exec")) {
		cli_command = "aiocopd exec";
		return cmd_exec(argc - 1, argv + 1);
	}
	return live(argc, argv);
}
