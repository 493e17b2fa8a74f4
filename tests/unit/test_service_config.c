/*
 * test_service_config.c - unit tests for src/service_config.c and the rule-facing part of
 * src/proc_facts.c: what a configuration means, every error with its FILE:LINE, drop-ins
 * overriding in name order, and which rule selects a process (SPEC 6.2).
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "service_config.h"

struct fixture {
	char dir[64];
	char path[128];
	struct service_config cfg;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/aiocopd-conf-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/aiocopd.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	service_config_free(&f->cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *out = fopen(path, "w");

	assert_non_null(out);
	fputs(text, out);
	assert_int_equal(fclose(out), 0);
}

static void write_drop_in(struct fixture *f, const char *name, const char *text)
{
	char path[256];

	snprintf(path, sizeof(path), "%s.d", f->path);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s.d/%s", f->path, name);
	write_file(path, text);
}

static int load(struct fixture *f, const char *text)
{
	write_file(f->path, text);
	return service_config_load(f->path, &f->cfg);
}

/* The one error of a refused configuration is at line of this file and says what. */
static void assert_one_error(struct fixture *f, unsigned line, const char *says)
{
	char prefix[256];

	if (f->cfg.n_errors != 1)
		fail_msg("expected one error, got %zu (first: %s)", f->cfg.n_errors,
			 f->cfg.n_errors ? f->cfg.errors[0] : "none");
	snprintf(prefix, sizeof(prefix), "%s:%u: ", f->path, line);
	if (strncmp(f->cfg.errors[0], prefix, strlen(prefix)) || !strstr(f->cfg.errors[0], says))
		fail_msg("expected '%s...%s', got '%s'", prefix, says, f->cfg.errors[0]);
}

static void test_defaults_of_an_empty_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "; nothing but a comment\n"), 0);
	assert_true(f->cfg.threshold_ms == 30);
	assert_int_equal(f->cfg.trace_depth, 20);
	assert_int_equal(f->cfg.log, SERVICE_LOG_JOURNAL);
	assert_string_equal(f->cfg.metrics_listen, "127.0.0.1:9477");
	assert_int_equal(f->cfg.report_limit, 20);
	assert_int_equal(f->cfg.n_rules, 0);
}

static void test_spec_example(void **state)
{
	struct fixture *f = *state;
	const struct watch_rule *r;

	assert_int_equal(load(f,
		"[service]\n"
		"threshold_ms = 25          ; default threshold for every rule\n"
		"trace_depth = 12\n"
		"log = file:/var/log/aiocopd/reports.jsonl\n"
		"metrics_listen = [::1]:9477\n"
		"report_limit_per_minute = 5\n"
		"\n"
		"[watch \"orders-api\"]       ; a rule\n"
		"exe = /usr/bin/python3*\n"
		"cmdline = gunicorn.*orders\n"
		"unit = orders-api.service\n"
		"user = 0\n"
		"threshold_ms = 50\n"
		"# and a rule with no key: every CPython\n"
		"[watch \"rest\"]\n"), 0);
	assert_true(f->cfg.threshold_ms == 25);
	assert_int_equal(f->cfg.trace_depth, 12);
	assert_int_equal(f->cfg.log, SERVICE_LOG_FILE);
	assert_string_equal(f->cfg.log_path, "/var/log/aiocopd/reports.jsonl");
	assert_string_equal(f->cfg.metrics_listen, "[::1]:9477");
	assert_int_equal(f->cfg.report_limit, 5);
	assert_int_equal(f->cfg.n_rules, 2);
	r = &f->cfg.rules[0];
	assert_string_equal(r->name, "orders-api");
	assert_string_equal(r->exe, "/usr/bin/python3*");
	assert_string_equal(r->cmdline_src, "gunicorn.*orders");
	assert_string_equal(r->unit, "orders-api.service");
	assert_true(r->has_user && r->uid == 0);
	assert_int_equal(r->line, 8);
	assert_true(service_rule_threshold(&f->cfg, r) == 50);
	assert_string_equal(f->cfg.rules[1].name, "rest");
	assert_true(service_rule_threshold(&f->cfg, &f->cfg.rules[1]) == 25);
}

static void test_unknown_key(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[service]\nthreshold_ms = 30\nthreshhold = 3\n"), -EINVAL);
	assert_one_error(f, 3, "unknown key 'threshhold'");
}

static void test_unknown_section(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[service]\n[wach \"x\"]\nexe = /x\n"), -EINVAL);
	assert_one_error(f, 2, "unknown section [wach \"x\"]");
}

static void test_bad_regex(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[watch \"a\"]\ncmdline = gunicorn(\n"), -EINVAL);
	assert_one_error(f, 2, "bad extended regex");
}

/* Nested intervals that regcomp would expand to a billion copies: refused before it runs. */
static void test_regex_too_large_when_expanded(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[watch \"a\"]\ncmdline = x{1,32767}{1,32767}\n"), -EINVAL);
	assert_one_error(f, 2, "its repetitions expand to more than 1024 atoms");
	service_config_free(&f->cfg);
	assert_int_equal(load(f, "[watch \"a\"]\ncmdline = (a)\\1\n"), -EINVAL);
	assert_one_error(f, 2, "back-reference");
}

static void test_bad_glob(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[watch \"a\"]\nexe = /usr/bin/python[3\n"), -EINVAL);
	assert_one_error(f, 2, "no closing ']'");
}

static void test_duplicate_rule(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[watch \"a\"]\nexe = /x\n\n[watch \"a\"]\nexe = /y\n"), -EINVAL);
	assert_one_error(f, 4, "defined twice");
}

static void test_non_numeric_threshold(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[watch \"a\"]\nthreshold_ms = fast\n"), -EINVAL);
	assert_one_error(f, 2, "threshold_ms = fast");
	service_config_free(&f->cfg);
	assert_int_equal(load(f, "[service]\nthreshold_ms = 30ms\n"), -EINVAL);
	assert_one_error(f, 2, "expected a number");
	service_config_free(&f->cfg);
	assert_int_equal(load(f, "[service]\nthreshold_ms = nan\n"), -EINVAL);
	assert_one_error(f, 2, "threshold_ms");
}

static void test_bad_values(void **state)
{
	struct fixture *f = *state;
	static const char *const cases[][2] = {
		{ "[service]\nlog = syslog\n", "log = syslog" },
		{ "[service]\nlog = file:relative.jsonl\n", "file:/absolute/path" },
		{ "[service]\nmetrics_listen = 127.0.0.1\n", "metrics_listen" },
		{ "[service]\nmetrics_listen = 127.0.0.1:70000\n", "metrics_listen" },
		{ "[service]\ntrace_depth = 65\n", "trace_depth" },
		{ "[service]\nreport_limit_per_minute = -1\n", "report_limit_per_minute" },
		{ "[watch \"a\"]\nuser = no-such-user-here\n", "no such user" },
		{ "; names\n[watch \"a b\"]\n", "a rule's name" },
		{ "; names\n[watch a]\n", "expected [watch \"NAME\"]" },
		{ "[service]\nthis line has no equals sign\n", "not a [section]" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(load(f, cases[i][0]), -EINVAL);
		assert_one_error(f, 2, cases[i][1]);
		service_config_free(&f->cfg);
	}
}

static void test_key_outside_a_section_and_twice(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "threshold_ms = 30\n"), -EINVAL);
	assert_one_error(f, 1, "outside any section");
	service_config_free(&f->cfg);
	assert_int_equal(load(f, "[watch \"a\"]\nexe = /x\nexe = /y\n"), -EINVAL);
	assert_one_error(f, 3, "given twice");
}

/* inih would cut a long line and read its rest as a line of its own: refused instead. */
static void test_line_too_long(void **state)
{
	struct fixture *f = *state;
	char text[1024];

	snprintf(text, sizeof(text), "[watch \"a\"]\ncmdline = %0500d\nexe = /x\n", 7);
	assert_int_equal(load(f, text), -EINVAL);
	assert_one_error(f, 2, "line longer than");
}

static void test_every_error_is_told(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "[service]\nbogus = 1\n[watch \"a\"]\ncmdline = (\nexe = [\n"),
			 -EINVAL);
	assert_int_equal(f->cfg.n_errors, 3);
	assert_non_null(strstr(f->cfg.errors[0], ":2: "));
	assert_non_null(strstr(f->cfg.errors[1], ":4: "));
	assert_non_null(strstr(f->cfg.errors[2], ":5: "));
}

static void test_missing_file(void **state)
{
	struct fixture *f = *state;
	char path[256];

	snprintf(path, sizeof(path), "%s/none.conf", f->dir);
	assert_int_equal(service_config_load(path, &f->cfg), -ENOENT);
	assert_int_equal(f->cfg.n_errors, 1);
	assert_non_null(strstr(f->cfg.errors[0], "No such file"));
}

/* FILE.d/ *.conf after FILE, in name order: later keys override, rules keep their place. */
static void test_drop_ins_override_in_name_order(void **state)
{
	struct fixture *f = *state;

	write_drop_in(f, "20-late.conf", "[service]\nthreshold_ms = 40\n"
			 "[watch \"api\"]\nthreshold_ms = 90\n");
	write_drop_in(f, "10-early.conf", "[service]\nthreshold_ms = 35\n[watch \"extra\"]\n"
			 "unit = extra.service\n");
	write_drop_in(f, "30-ignored.conf.disabled", "[service]\nthreshold_ms = 1\n");
	assert_int_equal(load(f, "[service]\nthreshold_ms = 30\n[watch \"api\"]\nexe = /x\n"), 0);
	assert_int_equal(f->cfg.n_files, 3);
	assert_true(f->cfg.threshold_ms == 40);
	assert_int_equal(f->cfg.n_rules, 2);
	assert_string_equal(f->cfg.rules[0].name, "api");
	assert_string_equal(f->cfg.rules[0].exe, "/x");
	assert_true(f->cfg.rules[0].threshold_ms == 90);
	assert_string_equal(f->cfg.rules[1].name, "extra");
}

static void test_error_in_a_drop_in_names_it(void **state)
{
	struct fixture *f = *state;
	char prefix[256];

	write_drop_in(f, "50-bad.conf", "\n\n[service]\nlog = nowhere\n");
	assert_int_equal(load(f, "[service]\n"), -EINVAL);
	assert_int_equal(f->cfg.n_errors, 1);
	snprintf(prefix, sizeof(prefix), "%s.d/50-bad.conf:4: ", f->path);
	assert_true(!strncmp(f->cfg.errors[0], prefix, strlen(prefix)));
}

static struct proc_facts facts(const char *exe, const char *cmdline, const char *unit,
			       uid_t uid)
{
	struct proc_facts p = { .pid = 42, .uid = uid, .has_uid = true,
				.have = FACT_EXE | FACT_CMDLINE | FACT_UNIT | FACT_UID };

	snprintf(p.exe, sizeof(p.exe), "%s", exe);
	snprintf(p.cmdline, sizeof(p.cmdline), "%s", cmdline);
	snprintf(p.unit, sizeof(p.unit), "%s", unit);
	return p;
}

/* Every key given must match; the first matching rule in file order wins. */
static void test_rule_matching(void **state)
{
	struct fixture *f = *state;
	struct proc_facts p;
	const struct watch_rule *r;

	assert_int_equal(load(f,
		"[watch \"orders\"]\nexe = /usr/bin/python3*\ncmdline = gunicorn.*orders\n"
		"unit = orders-*.service\nuser = 1000\n"
		"[watch \"any-python\"]\nexe = *python3*\n"), 0);
	p = facts("/usr/bin/python3.11", "/usr/bin/python3.11 gunicorn app:orders", "orders-api.service",
		  1000);
	r = service_config_match(&f->cfg, &p);
	assert_non_null(r);
	assert_string_equal(r->name, "orders");
	p.uid = 33;		/* another user: only the second rule */
	r = service_config_match(&f->cfg, &p);
	assert_non_null(r);
	assert_string_equal(r->name, "any-python");
	p = facts("/opt/venv/bin/python3", "python3 worker.py", "", 0);
	r = service_config_match(&f->cfg, &p);
	assert_non_null(r);
	assert_string_equal(r->name, "any-python");
	p = facts("/usr/bin/bash", "bash -c gunicorn orders", "orders-api.service", 1000);
	assert_null(service_config_match(&f->cfg, &p));
	p = facts("", "", "", 0);	/* a kernel thread */
	assert_null(service_config_match(&f->cfg, &p));
}

static void test_unit_of_a_cgroup(void **state)
{
	char unit[PROC_FACTS_UNIT_MAX];

	proc_facts_unit_of("/system.slice/orders-api.service", unit, sizeof(unit));
	assert_string_equal(unit, "orders-api.service");
	/* a container's own systemd: its service, not the container's */
	proc_facts_unit_of("/machine.slice/systemd-nspawn@web.service/payload/system.slice/"
			   "demo.service", unit, sizeof(unit));
	assert_string_equal(unit, "demo.service");
	proc_facts_unit_of("/user.slice/user-1000.slice/session-3.scope", unit, sizeof(unit));
	assert_string_equal(unit, "session-3.scope");
	proc_facts_unit_of("/", unit, sizeof(unit));
	assert_string_equal(unit, "");
	proc_facts_unit_of("/system.slice/a.service/", unit, sizeof(unit));
	assert_string_equal(unit, "a.service");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_defaults_of_an_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spec_example, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_section, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_regex, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regex_too_large_when_expanded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_glob, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_rule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_numeric_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_outside_a_section_and_twice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_line_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_error_is_told, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop_ins_override_in_name_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_error_in_a_drop_in_names_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rule_matching, setup, teardown),
		cmocka_unit_test(test_unit_of_a_cgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
