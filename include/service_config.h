/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The service's configuration (SPEC 6.2): an INI file and the *.conf files of FILE.d/ read
 * after it in name order, later keys overriding earlier ones. Parsed with libinih; every
 * error names FILE:LINE, and a configuration with any error is refused whole.
 */
#ifndef AIOCOPD_SERVICE_CONFIG_H
#define AIOCOPD_SERVICE_CONFIG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proc_facts.h"
#include "service_log.h"

#define CONFIG_DEFAULT_PATH		"/etc/aiocopd/aiocopd.conf"
#define CONFIG_MAX_RULES		256
#define CONFIG_MAX_ERRORS		64	/* errors kept; the rest are counted */
#define CONFIG_RULE_NAME_MAX		64
#define CONFIG_DEFAULT_LISTEN		"127.0.0.1:9477"

/* One [watch "NAME"] section: a process must match every key given. */
struct watch_rule {
	char name[CONFIG_RULE_NAME_MAX + 1];
	char *exe;			/* fnmatch glob on the executable path, NULL: any */
	char *cmdline_src;		/* extended regex, searched in the command line */
	regex_t cmdline;
	bool has_cmdline;
	char *unit;			/* fnmatch glob on the systemd unit of its cgroup */
	char *user_src;			/* as written: a name or a uid */
	uid_t uid;
	bool has_user;
	double threshold_ms;		/* 0: the service's */
	char file[256];			/* where it was first defined, for --check-config */
	unsigned line;
};

struct service_config {
	double threshold_ms;
	unsigned trace_depth;
	enum service_log_kind log;
	char *log_path;			/* log = file:PATH */
	char *metrics_listen;		/* "" or NULL: no endpoint */
	unsigned report_limit;		/* per process and entry point and minute; 0: none */
	struct watch_rule *rules;	/* in the order of their first definition */
	size_t n_rules;
	/* what was wrong: "FILE:LINE: what", in the order found */
	char *errors[CONFIG_MAX_ERRORS];
	size_t n_errors;
	size_t n_errors_dropped;
	size_t n_files;			/* files read */
};

/* Reads path and path.d/ into cfg (freed with service_config_free). 0, or -EINVAL with
 * cfg->errors filled, or another negative errno (cfg->errors says what). */
int service_config_load(const char *path, struct service_config *cfg);
void service_config_free(struct service_config *cfg);

/* The first rule (in file order) whose every key f matches, or NULL. */
const struct watch_rule *service_config_match(const struct service_config *cfg,
					      struct proc_facts *f);
/* The threshold a rule's processes get. */
double service_rule_threshold(const struct service_config *cfg, const struct watch_rule *r);
/* The metrics endpoint's address, "" when there is none. */
const char *service_config_listen(const struct service_config *cfg);

#endif
