/* SPDX-License-Identifier: GPL-2.0 */
/* `aiocopd service --check-config` (src/service_check.c). */
#ifndef AIOCOPD_SERVICE_CHECK_H
#define AIOCOPD_SERVICE_CHECK_H

/* Checks the configuration at path and prints what it selects now; the exit status. */
int service_check_config(const char *path);

#endif
