// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd service --check-config` (SPEC 6.1): reads the configuration as the service would,
 * prints its errors with their FILE:LINE (exit status 1) or what it says (the [service]
 * settings, each rule), and which running processes the rules select now, each looked at as
 * discovery would look at it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_facts.h"
#include "report.h"
#include "service_check.h"
#include "service_config.h"
#include "target.h"

static void print_rule(const struct service_config *cfg, const struct watch_rule *r)
{
	printf("[watch \"%s\"] (%s:%u): threshold %g ms", r->name, r->file, r->line,
	       service_rule_threshold(cfg, r));
	if (r->exe)
		printf(", exe %s", r->exe);
	if (r->cmdline_src)
		printf(", cmdline /%s/", r->cmdline_src);
	if (r->unit)
		printf(", unit %s", r->unit);
	if (r->user_src)
		printf(", user %s (uid %u)", r->user_src, (unsigned)r->uid);
	putchar('\n');
}

struct selected_walk {
	const struct service_config *cfg;
	struct proc_facts facts;
	struct py_target target;
};

static void print_if_selected(void *ctx, pid_t pid)
{
	struct target_options topts = { .debug_root = getenv("AIOCOPD_DEBUG_ROOT") };
	struct selected_walk *walk = ctx;
	const struct watch_rule *r;
	char err[512] = "";

	if (pid == getpid())
		return;
	proc_facts_init(&walk->facts, pid);
	r = service_config_match(walk->cfg, &walk->facts);
	if (!r)
		return;
	if (target_inspect(pid, &topts, &walk->target, err, sizeof(err)) == 0)
		printf("  PID %d (%s): CPython %s: ", pid, r->name, walk->target.version);
	else
		printf("  PID %d (%s): not watched (%s): ", pid, r->name, err);
	report_put_text(stdout, proc_facts_cmdline_of(&walk->facts));
	putchar('\n');
}

/* What the rules select now: every running process, as the service would look at it. */
static void print_selected(const struct service_config *cfg)
{
	struct selected_walk *walk = malloc(sizeof(*walk));
	int ret = -ENOMEM;

	if (walk) {
		walk->cfg = cfg;
		ret = proc_for_each_pid(print_if_selected, walk);
	}
	if (ret)
		fprintf(stderr, "aiocopd: cannot list the processes: %s\n", strerror(-ret));
	free(walk);
}

int service_check_config(const char *path)
{
	struct service_config cfg;
	int ret = service_config_load(path, &cfg);

	if (ret) {
		for (size_t i = 0; i < cfg.n_errors; i++)
			fprintf(stderr, "%s\n", cfg.errors[i]);
		if (cfg.n_errors_dropped)
			fprintf(stderr, "(%zu more errors)\n", cfg.n_errors_dropped);
		if (!cfg.n_errors)
			fprintf(stderr, "%s: %s\n", path, strerror(-ret));
		service_config_free(&cfg);
		return 1;
	}
	printf("%s: ok (%zu file%s read)\n", path, cfg.n_files, cfg.n_files == 1 ? "" : "s");
	printf("[service]: threshold %g ms, trace depth %u, log %s%s, metrics %s, report limit "
	       "%u a minute\n", cfg.threshold_ms, cfg.trace_depth,
	       cfg.log == SERVICE_LOG_JOURNAL ? "journal" : cfg.log == SERVICE_LOG_STDOUT ?
	       "stdout" : "file:", cfg.log == SERVICE_LOG_FILE ? cfg.log_path : "",
	       service_config_listen(&cfg)[0] ? service_config_listen(&cfg) : "off", cfg.report_limit);
	if (!cfg.n_rules)
		printf("no [watch] rule: nothing would be watched\n");
	for (size_t i = 0; i < cfg.n_rules; i++)
		print_rule(&cfg, &cfg.rules[i]);
	printf("selected now:\n");
	print_selected(&cfg);
	service_config_free(&cfg);
	return 0;
}
