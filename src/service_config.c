// SPDX-License-Identifier: GPL-2.0
/*
 * The service's configuration (see service_config.h). libinih splits the lines; this file
 * says what they mean. inih reads at most INI_MAX_LINE bytes of a line and would take the
 * rest for a line of its own, so the reader below counts lines and refuses a longer one
 * instead; the line count is also where every error's FILE:LINE comes from.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "aiocopd.h"
#include "array.h"
#include "bounded_regex.h"
#include "service_config.h"

#define CONFIG_LINE_MAX		INI_MAX_LINE	/* bytes of a line, its newline included */
#define CONFIG_MAX_FILES	128		/* drop-ins read */
#define CONFIG_REGEX_TRIALS_MS	(4 * REGEX_TRIAL_MS)	/* a load's regexes, all together */

/* The state of reading one file. */
struct parse {
	struct service_config *cfg;
	const char *file;
	FILE *in;
	unsigned line;			/* of the line inih handles now */
	bool in_section, in_service;
	size_t cap_rules;
	/* the rule of the current section, and whether this file defined it already */
	struct watch_rule *rule;
	bool *defined_here;		/* per rule: seen in this file */
	/* keys given in the current section of this file, to refuse a key given twice */
	char seen_keys[16][32];
	unsigned n_seen_keys;
	unsigned regex_trial_ms_left;	/* for all the files' regexes (bounded_regcomp) */
};

static void add_error(struct service_config *cfg, const char *file, unsigned line,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void add_error(struct service_config *cfg, const char *file, unsigned line,
		      const char *fmt, ...)
{
	char what[512];
	va_list ap;
	char *msg;

	if (cfg->n_errors >= CONFIG_MAX_ERRORS) {
		cfg->n_errors_dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (line && asprintf(&msg, "%s:%u: %s", file, line, what) < 0)
		msg = NULL;
	else if (!line && asprintf(&msg, "%s: %s", file, what) < 0)
		msg = NULL;
	if (!msg) {
		cfg->n_errors_dropped++;
		return;
	}
	cfg->errors[cfg->n_errors++] = msg;
}

static bool parse_number(const char *v, double min, double max, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (errno || end == v || *end || d != d || d < min || d > max)
		return false;
	*out = d;
	return true;
}

/* A glob fnmatch can use: brackets closed, no trailing escape. */
static bool glob_is_valid(const char *g, const char **why)
{
	for (const char *s = g; *s; s++) {
		if (*s == '\\') {
			if (!s[1]) {
				*why = "ends with a lone backslash";
				return false;
			}
			s++;
		} else if (*s == '[') {
			const char *close = s + 1;

			if (*close == '!' || *close == '^')
				close++;
			if (*close == ']')
				close++;
			close = strchr(close, ']');
			if (!close) {
				*why = "has a '[' with no closing ']'";
				return false;
			}
			s = close;
		}
	}
	if (!*g) {
		*why = "is empty";
		return false;
	}
	return true;
}

static bool name_is_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > CONFIG_RULE_NAME_MAX)
		return false;
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		if (!isalnum(*s) && !strchr("-_.:@", *s))
			return false;
	return true;
}

static int replace_string(char **slot, const char *v)
{
	char *copy = strdup(v);

	if (!copy)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

/* ---- [service] --------------------------------------------------------------------------- */

static int set_log(struct parse *p, const char *v)
{
	struct service_config *cfg = p->cfg;

	if (!strcmp(v, "journal")) {
		cfg->log = SERVICE_LOG_JOURNAL;
	} else if (!strcmp(v, "stdout")) {
		cfg->log = SERVICE_LOG_STDOUT;
	} else if (!strncmp(v, "file:", 5) && v[5] == '/') {
		cfg->log = SERVICE_LOG_FILE;
		return replace_string(&cfg->log_path, v + 5);
	} else {
		add_error(cfg, p->file, p->line, "log = %s: expected journal, stdout or "
			  "file:/absolute/path", v);
	}
	return 0;
}

/* HOST:PORT, [V6]:PORT or empty; the endpoint itself checks that it can listen there. */
static bool listen_is_valid(const char *v)
{
	const char *colon = strrchr(v, ':');
	double port;

	if (!*v)
		return true;
	if (!colon || colon == v || !parse_number(colon + 1, 1, 65535, &port) ||
	    port != (unsigned)port)
		return false;
	if (v[0] == '[')
		return colon[-1] == ']' && colon - v > 2;
	return !memchr(v, '[', colon - v) && !memchr(v, ']', colon - v);
}

static void set_service_key(struct parse *p, const char *key, const char *v)
{
	struct service_config *cfg = p->cfg;
	double d;

	if (!strcmp(key, "threshold_ms")) {
		if (!parse_number(v, 0.1, 3600000, &d))
			add_error(cfg, p->file, p->line, "threshold_ms = %s: expected a number of "
				  "milliseconds from 0.1 to 3600000", v);
		else
			cfg->threshold_ms = d;
	} else if (!strcmp(key, "trace_depth")) {
		if (!parse_number(v, 1, AIOCOPD_MAX_FRAMES, &d) || d != (unsigned)d)
			add_error(cfg, p->file, p->line, "trace_depth = %s: expected a whole number "
				  "from 1 to %d", v, AIOCOPD_MAX_FRAMES);
		else
			cfg->trace_depth = d;
	} else if (!strcmp(key, "log")) {
		if (set_log(p, v))
			add_error(cfg, p->file, p->line, "out of memory");
	} else if (!strcmp(key, "metrics_listen")) {
		if (!listen_is_valid(v))
			add_error(cfg, p->file, p->line, "metrics_listen = %s: expected HOST:PORT, "
				  "[IPV6]:PORT or nothing (no endpoint)", v);
		else if (replace_string(&cfg->metrics_listen, v))
			add_error(cfg, p->file, p->line, "out of memory");
	} else if (!strcmp(key, "report_limit_per_minute")) {
		if (!parse_number(v, 0, 1000000, &d) || d != (unsigned)d)
			add_error(cfg, p->file, p->line, "report_limit_per_minute = %s: expected a "
				  "whole number (0: no limit)", v);
		else
			cfg->report_limit = d;
	} else {
		add_error(cfg, p->file, p->line, "unknown key '%s' in [service] (threshold_ms, "
			  "trace_depth, log, metrics_listen, report_limit_per_minute)", key);
	}
}

/* ---- [watch "NAME"] -------------------------------------------------------------------- */

static void set_glob(struct parse *p, char **slot, const char *key, const char *v)
{
	const char *why;

	if (!glob_is_valid(v, &why))
		add_error(p->cfg, p->file, p->line, "%s = %s: the glob %s", key, v, why);
	else if (replace_string(slot, v))
		add_error(p->cfg, p->file, p->line, "out of memory");
}

static void set_cmdline(struct parse *p, struct watch_rule *r, const char *v)
{
	char why[256];
	regex_t re;

	if (bounded_regcomp(&re, v, REG_NOSUB, &p->regex_trial_ms_left, why, sizeof(why))) {
		add_error(p->cfg, p->file, p->line, "cmdline = %s: bad extended regex: %s", v, why);
		return;
	}
	if (replace_string(&r->cmdline_src, v)) {
		regfree(&re);
		add_error(p->cfg, p->file, p->line, "out of memory");
		return;
	}
	if (r->has_cmdline)
		regfree(&r->cmdline);
	r->cmdline = re;
	r->has_cmdline = true;
}

static void set_user(struct parse *p, struct watch_rule *r, const char *v)
{
	struct passwd *pw = getpwnam(v);
	double uid;

	if (pw) {
		r->uid = pw->pw_uid;
	} else if (parse_number(v, 0, UINT32_MAX - 1, &uid) && uid == (uid_t)uid) {
		r->uid = uid;
	} else {
		add_error(p->cfg, p->file, p->line, "user = %s: no such user (a name or a uid)", v);
		return;
	}
	if (replace_string(&r->user_src, v)) {
		add_error(p->cfg, p->file, p->line, "out of memory");
		return;
	}
	r->has_user = true;
}

static void set_rule_key(struct parse *p, struct watch_rule *r, const char *key, const char *v)
{
	double d;

	if (!strcmp(key, "exe")) {
		set_glob(p, &r->exe, key, v);
	} else if (!strcmp(key, "unit")) {
		set_glob(p, &r->unit, key, v);
	} else if (!strcmp(key, "cmdline")) {
		set_cmdline(p, r, v);
	} else if (!strcmp(key, "user")) {
		set_user(p, r, v);
	} else if (!strcmp(key, "threshold_ms")) {
		if (!parse_number(v, 0.1, 3600000, &d))
			add_error(p->cfg, p->file, p->line, "threshold_ms = %s: expected a number of "
				  "milliseconds from 0.1 to 3600000", v);
		else
			r->threshold_ms = d;
	} else {
		add_error(p->cfg, p->file, p->line, "unknown key '%s' in [watch \"%s\"] (exe, "
			  "cmdline, unit, user, threshold_ms)", key, r->name);
	}
}

static struct watch_rule *find_rule(struct service_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (!strcmp(cfg->rules[i].name, name))
			return &cfg->rules[i];
	return NULL;
}

/* The rule a section header names, new or defined by an earlier file (its keys override). */
static struct watch_rule *open_rule(struct parse *p, const char *name)
{
	struct service_config *cfg = p->cfg;
	struct watch_rule *r = find_rule(cfg, name), *grown;
	bool *seen;

	if (r) {
		if (p->defined_here[r - cfg->rules]) {
			add_error(cfg, p->file, p->line, "[watch \"%s\"] is defined twice in this "
				  "file", name);
			return NULL;
		}
		p->defined_here[r - cfg->rules] = true;
		return r;
	}
	if (cfg->n_rules >= CONFIG_MAX_RULES) {
		add_error(cfg, p->file, p->line, "more than %d [watch] sections", CONFIG_MAX_RULES);
		return NULL;
	}
	grown = array_room_for(cfg->rules, &p->cap_rules, cfg->n_rules, sizeof(*grown));
	seen = grown ? realloc(p->defined_here, p->cap_rules * sizeof(*seen)) : NULL;
	if (grown)
		cfg->rules = grown;
	if (!seen) {
		add_error(cfg, p->file, p->line, "out of memory");
		return NULL;
	}
	p->defined_here = seen;
	seen[cfg->n_rules] = true;
	r = &cfg->rules[cfg->n_rules++];
	*r = (struct watch_rule){ 0 };
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->file, sizeof(r->file), "%s", p->file);
	r->line = p->line;
	return r;
}

/* `watch "NAME"` (spaces around allowed): NAME, or NULL with an error told. */
static bool rule_name_of(struct parse *p, const char *section, char *name, size_t namesz)
{
	const char *q, *end;

	if (strncmp(section, "watch", 5) || !isspace((unsigned char)section[5]))
		return false;
	q = section + 5;
	while (isspace((unsigned char)*q))
		q++;
	end = *q == '"' ? strchr(q + 1, '"') : NULL;
	if (!end || end[1] || (size_t)(end - q - 1) >= namesz) {
		add_error(p->cfg, p->file, p->line, "[%s]: expected [watch \"NAME\"]", section);
		return true;
	}
	memcpy(name, q + 1, end - q - 1);
	name[end - q - 1] = 0;
	if (!name_is_valid(name)) {
		add_error(p->cfg, p->file, p->line, "[%s]: a rule's name is 1 to %d letters, digits "
			  "or -_.:@", section, CONFIG_RULE_NAME_MAX);
		name[0] = 0;
	}
	return true;
}

/* A new section: which one, and whether its keys are taken. */
static void enter_section(struct parse *p, const char *section)
{
	char name[CONFIG_RULE_NAME_MAX + 2] = "";

	p->rule = NULL;
	p->n_seen_keys = 0;
	p->in_service = !strcmp(section, "service");
	if (p->in_service)
		return;
	if (!rule_name_of(p, section, name, sizeof(name))) {
		add_error(p->cfg, p->file, p->line, "unknown section [%s] ([service] or "
			  "[watch \"NAME\"])", section);
		return;
	}
	if (name[0])
		p->rule = open_rule(p, name);
}

static bool key_given_twice(struct parse *p, const char *key)
{
	for (unsigned i = 0; i < p->n_seen_keys; i++)
		if (!strcmp(p->seen_keys[i], key))
			return true;
	if (p->n_seen_keys < sizeof(p->seen_keys) / sizeof(p->seen_keys[0]) &&
	    strlen(key) < sizeof(p->seen_keys[0]))
		strcpy(p->seen_keys[p->n_seen_keys++], key);
	return false;
}

/*
 * A section header, seen by the reader since inih tells a section only with its first key
 * (a [watch] section with no key would go unseen). As inih: a line that starts with '['
 * and has a ']'; an indented one would continue the value before it.
 */
static void maybe_section(struct parse *p, char *line)
{
	char *start = line, *end;

	if (p->line == 1 && !strncmp(start, "\xEF\xBB\xBF", 3))
		start += 3;
	if (*start != '[')
		return;
	end = strchr(start + 1, ']');
	if (!end)
		return;		/* inih says what is wrong with it */
	*end = 0;
	enter_section(p, start + 1);
	*end = ']';
	p->in_section = true;
}

/* inih's reader: one line per call, a line too long for inih swallowed and refused. */
static char *read_line(char *buf, int size, void *ctx)
{
	struct parse *p = ctx;
	size_t len;
	int c;

	if (!fgets(buf, size, p->in))
		return NULL;
	p->line++;
	len = strlen(buf);
	if (len && buf[len - 1] != '\n' && !feof(p->in)) {
		/* the rest of this line would reach inih as a line of its own */
		while ((c = fgetc(p->in)) != EOF && c != '\n')
			;
		add_error(p->cfg, p->file, p->line, "line longer than %d characters",
			  CONFIG_LINE_MAX - 2);
		buf[0] = 0;
		return buf;
	}
	maybe_section(p, buf);
	return buf;
}

static int on_key(void *ctx, const char *section, const char *key, const char *value)
{
	struct parse *p = ctx;

	if (!p->in_section) {
		add_error(p->cfg, p->file, p->line, "'%s' is outside any section", key);
		return 1;
	}
	if (key_given_twice(p, key)) {
		add_error(p->cfg, p->file, p->line, "'%s' is given twice in [%s] (a line that starts "
			  "with a space continues the line before)", key, section);
		return 1;
	}
	if (p->in_service)
		set_service_key(p, key, value);
	else if (p->rule)
		set_rule_key(p, p->rule, key, value);
	return 1;
}

static int parse_file(struct service_config *cfg, const char *file, struct parse *p)
{
	int ret;

	p->in = fopen(file, "re");
	if (!p->in) {
		ret = -errno;
		add_error(cfg, file, 0, "%s", strerror(errno));
		return ret;
	}
	p->file = file;
	p->line = 0;
	p->rule = NULL;
	p->in_section = p->in_service = false;
	p->n_seen_keys = 0;
	memset(p->defined_here, 0, p->cap_rules * sizeof(*p->defined_here));
	ret = ini_parse_stream(read_line, p, on_key, p);
	if (ret > 0)
		add_error(cfg, file, ret, "not a [section], a key = value line or a comment");
	else if (ret < 0)
		add_error(cfg, file, 0, "out of memory");
	if (ferror(p->in))
		add_error(cfg, file, 0, "read error");
	fclose(p->in);
	cfg->n_files++;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_drop_in(const struct dirent *d)
{
	size_t len = strlen(d->d_name);

	return d->d_name[0] != '.' && len > 5 && !strcmp(d->d_name + len - 5, ".conf");
}

/* FILE.d/ *.conf in name order (bytewise: the same whatever the locale). */
static void parse_drop_ins(struct service_config *cfg, const char *path, struct parse *p)
{
	struct dirent **names = NULL;
	char dir[PATH_MAX], file[PATH_MAX];
	int n;

	if (snprintf(dir, sizeof(dir), "%s.d", path) >= (int)sizeof(dir))
		return;
	n = scandir(dir, &names, is_drop_in, by_name);
	if (n < 0) {
		if (errno != ENOENT)
			add_error(cfg, dir, 0, "%s", strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		if (i >= CONFIG_MAX_FILES)
			add_error(cfg, dir, 0, "more than %d files: %s and later ones not read",
				  CONFIG_MAX_FILES, names[i]->d_name);
		else if (snprintf(file, sizeof(file), "%s/%s", dir, names[i]->d_name) <
			 (int)sizeof(file))
			parse_file(cfg, file, p);
		free(names[i]);
		if (i >= CONFIG_MAX_FILES) {
			for (int k = i + 1; k < n; k++)
				free(names[k]);
			break;
		}
	}
	free(names);
}

int service_config_load(const char *path, struct service_config *cfg)
{
	struct parse p = { .cfg = cfg, .regex_trial_ms_left = CONFIG_REGEX_TRIALS_MS };
	int ret;

	*cfg = (struct service_config){ .threshold_ms = 30, .trace_depth = 20,
					.log = SERVICE_LOG_JOURNAL, .report_limit = 20 };
	if (replace_string(&cfg->metrics_listen, CONFIG_DEFAULT_LISTEN))
		return -ENOMEM;
	p.defined_here = calloc(1, sizeof(*p.defined_here));
	if (!p.defined_here)
		return -ENOMEM;
	ret = parse_file(cfg, path, &p);
	if (!ret)
		parse_drop_ins(cfg, path, &p);
	free(p.defined_here);
	if (ret)
		return ret;
	return cfg->n_errors || cfg->n_errors_dropped ? -EINVAL : 0;
}

static void free_rule(struct watch_rule *r)
{
	free(r->exe);
	free(r->unit);
	free(r->cmdline_src);
	free(r->user_src);
	if (r->has_cmdline)
		regfree(&r->cmdline);
}

void service_config_free(struct service_config *cfg)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		free_rule(&cfg->rules[i]);
	free(cfg->rules);
	free(cfg->log_path);
	free(cfg->metrics_listen);
	for (size_t i = 0; i < cfg->n_errors; i++)
		free(cfg->errors[i]);
	*cfg = (struct service_config){ 0 };
}

double service_rule_threshold(const struct service_config *cfg, const struct watch_rule *r)
{
	return r->threshold_ms > 0 ? r->threshold_ms : cfg->threshold_ms;
}

const char *service_config_listen(const struct service_config *cfg)
{
	return cfg->metrics_listen ? cfg->metrics_listen : "";
}

/* Globs: '*' matches any characters, '/' included ("*python3*"). Facts read as needed. */
static bool rule_matches(const struct watch_rule *r, struct proc_facts *f)
{
	const char *exe, *unit;
	uid_t uid;

	if (r->exe && (!*(exe = proc_facts_exe(f)) || fnmatch(r->exe, exe, 0)))
		return false;
	if (r->unit && (!*(unit = proc_facts_unit(f)) || fnmatch(r->unit, unit, 0)))
		return false;
	if (r->has_user && (!proc_facts_uid(f, &uid) || uid != r->uid))
		return false;
	if (r->has_cmdline && regexec(&r->cmdline, proc_facts_cmdline_of(f), 0, NULL, 0))
		return false;
	return true;
}

const struct watch_rule *service_config_match(const struct service_config *cfg,
					      struct proc_facts *f)
{
	for (size_t i = 0; i < cfg->n_rules; i++)
		if (rule_matches(&cfg->rules[i], f))
			return &cfg->rules[i];
	return NULL;
}
