// SPDX-License-Identifier: GPL-2.0
/*
 * `aiocopd service` (SPEC 6): the production daemon. It watches every CPython process its
 * configuration's rules select, from start to exit, writes their reports to the journal, a
 * JSON-lines file or stdout, serves Prometheus metrics, and speaks systemd's notify
 * protocol. A reload (SIGHUP) applies a new configuration without detaching what it keeps
 * watching; a configuration with any error is refused whole and the old one runs on.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "array.h"
#include "cli.h"
#include "discover.h"
#include "engine.h"
#include "metrics.h"
#include "metrics_http.h"
#include "rate_limit.h"
#include "service_check.h"
#include "service_config.h"
#include "service_log.h"

#define SERVICE_TICK_US		1000000	/* summaries, loop statistics, status, losses */

static const char service_usage[] =
"Usage: aiocopd service [-c FILE] [--check-config] [-v]\n"
"Watch every CPython process the configuration's rules select, as a system service.\n"
"\n"
"  -c, --config FILE       the configuration (default " CONFIG_DEFAULT_PATH "); the\n"
"                          *.conf files of FILE.d/ are read after it, in name order\n"
"      --check-config      validate it, show what it would watch now, and exit\n"
"  -v, --verbose           also log what the engine does (-vv: and every process)\n"
"  -h, --help              show this help\n"
"\n"
"Signals: SIGHUP reloads the configuration, SIGUSR1 reopens the log file, SIGTERM and\n"
"SIGINT stop. Exit status: 0 when stopped, 1 on errors (a bad configuration, a metrics\n"
"address in use, a log that cannot be opened), 2 on usage errors. See aiocopd(8).\n";

/* What loop statistics of one thread the metrics have counted already. */
struct loop_mark {
	pid_t tid;
	uint32_t hist[LOOP_HIST_BUCKETS];
	uint64_t busy_ns;
};

/* A watched process, as the service knows it (its watched's owner). */
struct svc_target {
	struct watched *w;
	char service[CONFIG_RULE_NAME_MAX + 1];
	char *cmdline;			/* when it was attached (the engine keeps only its start) */
	struct loop_mark *marks;
	size_t n_marks, cap_marks;
	struct svc_target *prev, *next;
};

struct service {
	const char *config_path;
	struct service_config cfg;
	sd_event *loop;
	struct engine *engine;
	struct discoverer *disc;
	struct metrics *metrics;
	struct metrics_http *http;
	struct service_log *log;
	struct rate_limit *limit;
	struct svc_target *targets;	/* every watched process */
	size_t n_targets;
	int verbose;
	bool stderr_is_journal;		/* systemd reads our stderr: priority prefixes */
	char status[160];
};

/* ---- messages ---------------------------------------------------------------------------- */

static void say(struct service *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void put_message(struct service *s, int level, const char *msg)
{
	if (level > LOG_NOTICE + (s ? s->verbose : 0))
		return;
	if (s && s->stderr_is_journal)
		fprintf(stderr, "<%d>%s\n", level, msg);
	else
		fprintf(stderr, "aiocopd: %s\n", msg);
}

static void say(struct service *s, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	put_message(s, level, msg);
}

/* The engine's messages: warnings always, what it does (LOG_INFO) with -v. */
static void on_engine_log(void *ctx, int level, const char *msg)
{
	put_message(ctx, level, msg);
}

/* ---- the processes watched ------------------------------------------------------------------ */

static void update_status(struct service *s)
{
	char status[sizeof(s->status)];

	snprintf(status, sizeof(status), "watching %zu process%s (%zu rule%s)", s->n_targets,
		 s->n_targets == 1 ? "" : "es", s->cfg.n_rules, s->cfg.n_rules == 1 ? "" : "s");
	if (!strcmp(status, s->status))
		return;
	memcpy(s->status, status, sizeof(status));
	sd_notifyf(0, "STATUS=%s", status);
}

static void update_watched_gauges(struct service *s)
{
	for (size_t i = 0; i < s->cfg.n_rules; i++) {
		const char *name = s->cfg.rules[i].name;
		unsigned n = 0;

		for (struct svc_target *t = s->targets; t; t = t->next)
			n += !strcmp(t->service, name);
		metrics_set_watched(s->metrics, name, n);
	}
	update_status(s);
}

static struct loop_mark *mark_of(struct svc_target *t, pid_t tid)
{
	struct loop_mark *grown;

	for (size_t i = 0; i < t->n_marks; i++)
		if (t->marks[i].tid == tid)
			return &t->marks[i];
	grown = array_room_for(t->marks, &t->cap_marks, t->n_marks, sizeof(*grown));
	if (!grown)
		return NULL;
	t->marks = grown;
	grown = &t->marks[t->n_marks++];
	memset(grown, 0, sizeof(*grown));
	grown->tid = tid;
	return grown;
}

/* What a loop thread's busy-time histogram gained since it was last counted. */
static void count_loop_stats(struct service *s, struct svc_target *t, pid_t tid,
			     const struct loop_stats *ls)
{
	struct loop_mark *m = mark_of(t, tid);
	uint32_t delta[LOOP_HIST_BUCKETS];
	bool any = false;

	if (!m)
		return;
	for (unsigned i = 0; i < LOOP_HIST_BUCKETS; i++) {
		delta[i] = ls->hist[i] >= m->hist[i] ? ls->hist[i] - m->hist[i] : ls->hist[i];
		any |= delta[i] != 0;
	}
	if (any)
		metrics_loop_busy(s->metrics, t->service, delta,
				  ls->busy_ns >= m->busy_ns ? ls->busy_ns - m->busy_ns : ls->busy_ns);
	memcpy(m->hist, ls->hist, sizeof(m->hist));
	m->busy_ns = ls->busy_ns;
}

struct stats_walk {
	struct service *s;
	struct svc_target *t;
};

static void on_live_loop_stats(void *ctx, pid_t tid, const struct loop_stats *ls)
{
	struct stats_walk *walk = ctx;

	count_loop_stats(walk->s, walk->t, tid, ls);
}

/* threshold: the process's own, 0 for the service's; cmdline NULL: read it now */
static void adopt(struct service *s, struct watched *w, const char *service, double threshold,
		  const char *cmdline)
{
	struct svc_target *t = calloc(1, sizeof(*t));

	if (t)
		t->cmdline = cmdline ? strdup(cmdline) : malloc(SERVICE_LOG_CMDLINE_MAX);
	if (t && t->cmdline && !cmdline)
		proc_facts_cmdline(w->pid, t->cmdline, SERVICE_LOG_CMDLINE_MAX);
	if (!t || !t->cmdline) {
		free(t);
		say(s, LOG_WARNING, "PID %d: out of memory, unwatched", w->pid);
		engine_unwatch(s->engine, w);
		return;
	}
	t->w = w;
	snprintf(t->service, sizeof(t->service), "%s", service);
	t->next = s->targets;
	if (s->targets)
		s->targets->prev = t;
	s->targets = t;
	s->n_targets++;
	w->owner = t;
	if (threshold > 0 && engine_set_threshold(s->engine, w, threshold))
		say(s, LOG_WARNING, "PID %d: its threshold of %g ms could not be set", w->pid,
		    threshold);
	update_watched_gauges(s);
}

static void forget(struct service *s, struct svc_target *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		s->targets = t->next;
	if (t->next)
		t->next->prev = t->prev;
	s->n_targets--;
	t->w->owner = NULL;
	free(t->cmdline);
	free(t->marks);
	free(t);
	update_watched_gauges(s);
}

/* ---- discovery's hooks ------------------------------------------------------------------------ */

static const void *select_process(void *ctx, struct proc_facts *f)
{
	struct service *s = ctx;

	return service_config_match(&s->cfg, f);
}

static void on_watched(void *ctx, struct watched *w, const void *selected)
{
	struct service *s = ctx;
	const struct watch_rule *rule = selected;

	say(s, LOG_NOTICE, "watching PID %d (%s): CPython %s, %.160s", w->pid, rule->name,
	    w->target.version, w->cmdline);
	adopt(s, w, rule->name, rule->threshold_ms, NULL);
}

static void on_adopted(void *ctx, struct watched *parent, struct watched *child)
{
	struct service *s = ctx;
	struct svc_target *p = parent ? parent->owner : NULL;

	if (!p) {
		engine_unwatch(s->engine, child);
		return;
	}
	say(s, LOG_NOTICE, "watching PID %d (%s): a fork of PID %d", child->pid, p->service,
	    parent->pid);
	adopt(s, child, p->service, parent->threshold_ms, p->cmdline);
}

static void on_attach_failed(void *ctx, pid_t pid, enum attach_failure why, const char *msg)
{
	struct service *s = ctx;

	metrics_attach_failure(s->metrics, why);
	say(s, why == ATTACH_GONE ? LOG_INFO : LOG_WARNING, "PID %d not watched: %s", pid,
	    msg && *msg ? msg : "it exited while being attached");
}

/* ---- the engine's sinks ---------------------------------------------------------------------- */

static void write_suppressed(void *ctx, const struct suppressed *sup)
{
	struct service *s = ctx;

	if (service_log_suppressed(s->log, sup))
		metrics_add_lost(s->metrics, SERVICE_LOST_LOG_WRITE, 1);
}

static void count_report(struct service *s, const struct svc_target *t, const struct report *r)
{
	if (r->slow_iteration || !r->exceeded)
		return;
	metrics_slow_callback(s->metrics, t->service, r->level, r->elapsed_ms / 1e3);
	for (size_t i = 0; i < r->n_events; i++)
		metrics_blocking(s->metrics, t->service, r->events[i].category,
				 r->events[i].duration_ms / 1e3);
}

static void on_report(void *ctx, const struct watched *w, const struct report *r)
{
	struct service *s = ctx;
	struct svc_target *t = w->owner;
	enum rate_verdict verdict;

	if (!t)
		return;
	count_report(s, t, r);
	verdict = rate_limit_admit(s->limit, t->service, w->pid, report_entry_point(r),
				   engine_now_ns(), r->ts);
	if (verdict == RATE_SUPPRESS) {
		metrics_suppressed(s->metrics, t->service, 1);
		return;
	}
	if (verdict == RATE_UNTRACKED)
		metrics_add_lost(s->metrics, SERVICE_LOST_RATE_TABLE, 1);
	if (service_log_report(s->log, r, t->service, t->cmdline))
		metrics_add_lost(s->metrics, SERVICE_LOST_LOG_WRITE, 1);
}

/* A process leaving: the last of its loops' statistics (taken out of BPF's map). */
static void on_final_loop_stats(void *ctx, const struct watched *w, pid_t tid, pid_t ns_tid,
				const struct loop_stats *ls)
{
	struct service *s = ctx;

	if (w->owner)
		count_loop_stats(s, w->owner, tid, ls);
}

static void on_process_change(void *ctx, const struct watched *w, enum process_change change)
{
	struct service *s = ctx;
	struct svc_target *t = w->owner;

	if (change == PROCESS_WATCHED || !t)
		return;
	rate_limit_flush(s->limit, engine_now_ns(), true, w->pid, write_suppressed, s);
	say(s, LOG_NOTICE, "PID %d (%s) %s: no longer watched", w->pid, t->service,
	    change == PROCESS_EXITED ? "exited" : "is let go");
	forget(s, t);
}

/* ---- every second ------------------------------------------------------------------------------ */

static void count_losses(struct service *s)
{
	for (unsigned k = 0; k < LOST_KINDS; k++)
		metrics_set_lost(s->metrics, k, engine_lost(s->engine, k));
}

static int on_tick(sd_event_source *src, uint64_t usec, void *ctx)
{
	struct service *s = ctx;

	rate_limit_flush(s->limit, engine_now_ns(), false, 0, write_suppressed, s);
	for (struct svc_target *t = s->targets; t; t = t->next) {
		struct stats_walk walk = { s, t };

		engine_read_loop_stats(s->engine, t->w, on_live_loop_stats, &walk);
	}
	count_losses(s);
	update_status(s);
	sd_event_source_set_time_relative(src, SERVICE_TICK_US);
	return sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
}

/* ---- configuration ------------------------------------------------------------------------------ */

static void say_config_errors(struct service *s, const struct service_config *cfg)
{
	for (size_t i = 0; i < cfg->n_errors; i++)
		say(s, LOG_ERR, "%s", cfg->errors[i]);
	if (cfg->n_errors_dropped)
		say(s, LOG_ERR, "(%zu more errors)", cfg->n_errors_dropped);
}

static int set_metric_services(struct service *s, const struct service_config *cfg)
{
	const char *names[CONFIG_MAX_RULES];

	for (size_t i = 0; i < cfg->n_rules; i++)
		names[i] = cfg->rules[i].name;
	return metrics_set_services(s->metrics, names, cfg->n_rules);
}

static struct engine_options engine_options_of(const struct service_config *cfg)
{
	return (struct engine_options){ .threshold_ms = cfg->threshold_ms,
					.trace_depth = cfg->trace_depth, .stats = true,
					.no_exit_hold = true };
}

static bool same_log(const struct service_config *a, const struct service_config *b)
{
	return a->log == b->log && (a->log != SERVICE_LOG_FILE || !strcmp(a->log_path, b->log_path));
}

static int open_log(struct service *s, const struct service_config *cfg,
		    struct service_log **out)
{
	char err[512] = "";
	int ret = service_log_open(out, cfg->log, cfg->log_path, err, sizeof(err));

	if (ret)
		say(s, LOG_ERR, "%s", err[0] ? err : strerror(-ret));
	return ret;
}

static int open_http(struct service *s, const struct service_config *cfg,
		     struct metrics_http **out)
{
	char err[512] = "";
	int ret;

	*out = NULL;
	if (!service_config_listen(cfg)[0])
		return 0;
	ret = metrics_http_open(out, s->loop, service_config_listen(cfg), s->metrics, err, sizeof(err));
	if (ret)
		say(s, LOG_ERR, "%s", err[0] ? err : strerror(-ret));
	return ret;
}

/* Every watched process is selected anew: another rule, another threshold, or none. */
static void rematch(struct service *s)
{
	struct proc_facts *f = malloc(sizeof(*f));
	struct svc_target *t, *next;

	if (!f)
		return;
	for (t = s->targets; t; t = next) {
		const struct watch_rule *rule;
		struct watched *w = t->w;

		next = t->next;
		proc_facts_init(f, w->pid);
		rule = service_config_match(&s->cfg, f);
		if (!proc_facts_alive(f))
			continue;	/* its exit is on the way */
		if (!rule) {
			say(s, LOG_NOTICE, "PID %d (%s): no rule selects it any more", w->pid,
			    t->service);
			engine_unwatch(s->engine, w);	/* its sink call forgets t */
			continue;
		}
		snprintf(t->service, sizeof(t->service), "%s", rule->name);
		if (engine_set_threshold(s->engine, w, rule->threshold_ms))
			say(s, LOG_WARNING, "PID %d: its new threshold could not be set", w->pid);
	}
	free(f);
}

/* SIGHUP: the new configuration whole, or none of it. */
static void reload(struct service *s)
{
	struct service_config next;
	struct service_log *log = NULL;
	struct metrics_http *http = NULL;
	struct engine_options opt;
	bool new_log, new_http;
	int ret;

	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)(engine_now_ns() / 1000));
	ret = service_config_load(s->config_path, &next);
	if (ret) {
		say_config_errors(s, &next);
		if (!next.n_errors)
			say(s, LOG_ERR, "%s: %s", s->config_path, strerror(-ret));
		goto refused;
	}
	new_log = !same_log(&s->cfg, &next);
	new_http = strcmp(service_config_listen(&s->cfg), service_config_listen(&next)) != 0;
	if (new_log && open_log(s, &next, &log))
		goto refused;
	if (new_http) {
		metrics_http_close(s->http);	/* the same port may be asked for again */
		s->http = NULL;
		if (open_http(s, &next, &http)) {
			open_http(s, &s->cfg, &s->http);	/* the old endpoint back */
			service_log_close(log);
			goto refused;
		}
		s->http = http;
	}
	if (new_log) {
		service_log_close(s->log);
		s->log = log;
	}
	service_config_free(&s->cfg);
	s->cfg = next;
	opt = engine_options_of(&s->cfg);
	if (engine_reconfigure(s->engine, &opt))
		say(s, LOG_WARNING, "some processes kept their old threshold");
	rate_limit_set(s->limit, s->cfg.report_limit);
	set_metric_services(s, &s->cfg);
	rematch(s);
	discover_scan(s->disc);
	update_watched_gauges(s);
	metrics_config_reload(s->metrics, true);
	say(s, LOG_NOTICE, "configuration reloaded: %zu rule%s", s->cfg.n_rules,
	    s->cfg.n_rules == 1 ? "" : "s");
	sd_notify(0, "READY=1");
	return;
refused:
	service_config_free(&next);
	metrics_config_reload(s->metrics, false);
	say(s, LOG_ERR, "the new configuration is refused; the old one runs on");
	sd_notify(0, "READY=1");
}

static int on_sighup(sd_event_source *src, const struct signalfd_siginfo *si, void *ctx)
{
	reload(ctx);
	return 0;
}

static int on_sigusr1(sd_event_source *src, const struct signalfd_siginfo *si, void *ctx)
{
	struct service *s = ctx;
	int ret = service_log_reopen(s->log);

	if (ret)
		say(s, LOG_ERR, "cannot reopen the log file %s: %s", s->cfg.log_path,
		    strerror(-ret));
	return 0;
}

/* ---- the service ------------------------------------------------------------------------------- */

static int add_signals(struct service *s)
{
	sigset_t mask;
	int ret;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	ret = sd_event_add_signal(s->loop, NULL, SIGHUP, on_sighup, s);
	if (ret >= 0)
		ret = sd_event_add_signal(s->loop, NULL, SIGUSR1, on_sigusr1, s);
	if (ret >= 0)
		ret = sd_event_add_time_relative(s->loop, NULL, CLOCK_MONOTONIC, SERVICE_TICK_US,
						 0, on_tick, s);
	if (ret >= 0)
		ret = sd_event_set_watchdog(s->loop, true);
	return ret < 0 ? ret : 0;
}

static int open_engine(struct service *s)
{
	struct engine_options opt = engine_options_of(&s->cfg);
	struct engine_sink sink = { .report = on_report, .loop_stats = on_final_loop_stats,
				    .process = on_process_change, .ctx = s };
	struct discover_hooks hooks = { .select = select_process, .watched = on_watched,
					.adopted = on_adopted, .failed = on_attach_failed,
					.ctx = s };
	char err[512] = "";
	int ret;

	opt.verbose = s->verbose;
	ret = engine_open(&s->engine, &opt, s->loop, on_engine_log, s, err, sizeof(err));
	if (ret) {
		say(s, LOG_ERR, "%s", err[0] ? err : "cannot load the BPF programs");
		return ret;
	}
	ret = engine_add_sink(s->engine, &sink);
	if (!ret)
		ret = discover_open(&s->disc, s->engine, s->loop, &hooks);
	if (ret)
		say(s, LOG_ERR, "cannot start discovery: %s", strerror(-ret));
	return ret;
}

static int start(struct service *s)
{
	int ret = service_config_load(s->config_path, &s->cfg);

	if (ret) {
		say_config_errors(s, &s->cfg);
		if (!s->cfg.n_errors)
			say(s, LOG_ERR, "%s: %s", s->config_path, strerror(-ret));
		return ret;
	}
	if (!cli_check_privileges())
		return -EPERM;
	signal(SIGXFSZ, SIG_IGN);	/* a full log (LimitFSIZE=) is a failed write, counted */
	if (cli_event_loop(&s->loop) || add_signals(s)) {
		say(s, LOG_ERR, "cannot set up the event loop");
		return -ENOMEM;
	}
	s->metrics = metrics_new(AIOCOPD_VERSION);
	s->limit = rate_limit_new(s->cfg.report_limit);
	if (!s->metrics || !s->limit || set_metric_services(s, &s->cfg)) {
		say(s, LOG_ERR, "out of memory");
		return -ENOMEM;
	}
	ret = open_log(s, &s->cfg, &s->log);
	if (!ret)
		ret = open_http(s, &s->cfg, &s->http);
	if (!ret)
		ret = open_engine(s);
	if (ret)
		return ret;
	if (!s->cfg.n_rules)
		say(s, LOG_WARNING, "%s has no [watch] rule: nothing is watched",
		    s->config_path);
	discover_scan(s->disc);
	update_watched_gauges(s);
	sd_notify(0, "READY=1");
	say(s, LOG_NOTICE, "started: %zu rule%s, %s", s->cfg.n_rules,
	    s->cfg.n_rules == 1 ? "" : "s", s->status);
	return 0;
}

static void stop(struct service *s)
{
	discover_close(s->disc);
	engine_close(s->engine);	/* every probe off; the sinks forget every target */
	if (s->limit && s->log)
		rate_limit_flush(s->limit, engine_now_ns(), true, 0, write_suppressed, s);
	rate_limit_free(s->limit);
	metrics_http_close(s->http);
	service_log_close(s->log);
	metrics_free(s->metrics);
	service_config_free(&s->cfg);
	sd_event_unref(s->loop);
}

static int parse_service_args(int argc, char **argv, struct service *s, bool *check)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:vh", options, NULL)) != -1) {
		switch (c) {
		case 'c':
			s->config_path = optarg;
			break;
		case 'C':
			*check = true;
			break;
		case 'v':
			s->verbose++;
			break;
		case 'h':
			fputs(service_usage, stdout);
			exit(0);
		case ':':
			return cli_usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("unexpected argument '%s'", argv[optind]);
	return 0;
}

int cmd_service(int argc, char **argv)
{
	struct service s = { .config_path = CONFIG_DEFAULT_PATH };
	bool check = false;
	int ret;

	ret = parse_service_args(argc, argv, &s, &check);
	if (ret)
		return ret;
	if (check)
		return service_check_config(s.config_path);
	s.stderr_is_journal = getenv("JOURNAL_STREAM") != NULL;
	ret = start(&s);
	if (!ret) {
		ret = sd_event_loop(s.loop);
		sd_notify(0, "STOPPING=1");
		say(&s, LOG_NOTICE, "stopping: every probe comes off");
		ret = ret < 0 ? 1 : 0;
	} else {
		ret = 1;
	}
	stop(&s);
	return ret;
}
