// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_config.c - libFuzzer harness for the service's configuration parser
 * (src/service_config.c over libinih).
 *
 * Input: the bytes of a configuration file, given as a memfd so the parser reads it through
 * its path. Besides not crashing, the result must keep what service_config.h promises: it is
 * accepted with no error, or refused with at least one error (or a count of dropped ones),
 * every error names the file, the rules are within their bound and each has a valid name,
 * and a rule's threshold is positive when it is set.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "service_config.h"

#define require(cond)	do { if (!(cond)) abort(); } while (0)

static void check(const struct service_config *cfg, int ret, const char *path)
{
	require(ret == 0 || ret < 0);
	if (ret == 0)
		require(cfg->n_errors == 0 && cfg->n_errors_dropped == 0);
	else
		require(cfg->n_errors > 0 || cfg->n_errors_dropped > 0);
	require(cfg->n_errors <= CONFIG_MAX_ERRORS);
	for (size_t i = 0; i < cfg->n_errors; i++)
		require(!strncmp(cfg->errors[i], path, strlen(path)));
	require(cfg->n_rules <= CONFIG_MAX_RULES);
	for (size_t i = 0; i < cfg->n_rules; i++) {
		const struct watch_rule *r = &cfg->rules[i];

		require(r->name[0] && strlen(r->name) <= CONFIG_RULE_NAME_MAX);
		require(r->threshold_ms >= 0);
		require(!r->has_cmdline || r->cmdline_src);
	}
	if (ret == 0)
		require(cfg->threshold_ms > 0 && cfg->trace_depth >= 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct service_config cfg;
	char path[64];
	int fd = memfd_create("fuzz.conf", MFD_CLOEXEC), ret;

	if (fd < 0)
		return 0;
	if (write(fd, data, len) != (ssize_t)len) {
		close(fd);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ret = service_config_load(path, &cfg);
	check(&cfg, ret, path);
	service_config_free(&cfg);
	close(fd);
	return 0;
}
