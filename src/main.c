// SPDX-License-Identifier: GPL-2.0
/*
 * aiocopd's entry point: the command word picks the command (SPEC sections 1 and 2); with
 * none it is the live monitor.
 */
#include <string.h>

#include "cli.h"

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
	if (argc > 1 && !strcmp(argv[1], "service")) {
		cli_command = "aiocopd service";
		return cmd_service(argc - 1, argv + 1);
	}
	return cmd_live(argc, argv);
}
