/*
 * test_service_log.c - unit tests for src/service_log.c (SPEC 6.3).
 *
 * JSON lines: every record of a file is a line of valid JSON (strict, UTF-8 validated) with
 * "service" and "cmdline"; processes appending to one file at once never mix their lines
 * (one write per record); a line cut short by RLIMIT_FSIZE or by a full non-blocking pipe
 * is ended before the next record; a reopen after a rename writes to the new file and a
 * failed one keeps the old; an unwritable path is one clear error; stdout is fd 1.
 *
 * The journal: in a child with a mount namespace of its own, a tmpfs over /run holds a
 * datagram socket bound at /run/systemd/journal/socket; the entries libsystemd sends there
 * are parsed as the native protocol (text and binary fields) and their MESSAGE, PRIORITY,
 * AIOCOPD_* and CODE_* fields checked. With the socket unbound, then gone, the error comes
 * back at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "service_log.h"

#define SERVICE		"orders-api"
#define CMDLINE		"gunicorn orders:app\n--bind \"0.0.0.0:8000\" \xff"
/* the same as written: the newline kept, the stray byte replaced by U+FFFD */
#define CMDLINE_TEXT	"gunicorn orders:app\n--bind \"0.0.0.0:8000\" \xef\xbf\xbd"
#define WHERE		"/srv/app.py:7:sleeper"
#define CHILD_SKIP	77

static char tmpdir[64];

/* ---- fixtures -------------------------------------------------------------------------- */

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	return d;
}

/* A report of pid 4242 at where; task NULL: a plain callback; trace_bytes pads its trace. */
static void make_report(struct report *r, enum severity_level level, const char *task,
			size_t n_events, size_t trace_bytes)
{
	static const int score[] = { [LEVEL_LOW] = 5, [LEVEL_MEDIUM] = 20, [LEVEL_HIGH] = 50 };

	*r = (struct report){ .ts = 1764000000.123456, .pid = 4242, .tid = 4243,
			      .elapsed_ms = 61.2, .threshold_ms = 30, .exceeded = true,
			      .level = level, .score = score[level], .oncpu_ms = 0.4,
			      .offcpu_ms = 60.8, .is_task = task != NULL };
	snprintf(r->task_name, sizeof(r->task_name), "%s", task ? task : "");
	snprintf(r->coro, sizeof(r->coro), "sleeper");
	snprintf(r->callback, sizeof(r->callback), task ? "Task.__step" : "Protocol.data_received");
	r->events = calloc(n_events, sizeof(*r->events));
	assert_non_null(r->events);
	r->n_events = n_events;
	for (size_t i = 0; i < n_events; i++) {
		struct report_event *e = &r->events[i];
		char *trace = malloc(trace_bytes + 128);
		int head;

		assert_non_null(trace);
		*e = (struct report_event){ .event = "time.sleep(0.06)", .category = CAT_SLEEP,
					    .severity = 50, .duration_ms = 60.1,
					    .syscall = "clock_nanosleep",
					    .entry_point = xstrdup(WHERE) };
		head = snprintf(trace, 128, "%s <- /usr/lib/python3.11/asyncio/events.py:80:_run",
				WHERE);
		memset(trace + head, 'x', trace_bytes);
		trace[head + trace_bytes] = 0;
		e->trace = trace;
	}
}

/* The loop's lag: no callback slow alone, the most sampled one at /srv/lag.py:31:tick. */
static void make_iteration(struct report *r)
{
	*r = (struct report){ .ts = 1764000002.5, .pid = 4242, .tid = 4242, .elapsed_ms = 95,
			      .threshold_ms = 30, .exceeded = true, .slow_iteration = true,
			      .callbacks = 300, .n_top = 1 };
	snprintf(r->callback, sizeof(r->callback), "<loop iteration>");
	r->top[0] = (struct report_top){ .is_task = true, .task_name = "Task-7", .coro = "tick",
					 .entry_point = xstrdup("/srv/lag.py:31:tick"), .ms = 40 };
}

static const struct suppressed held = {
	.service = SERVICE, .pid = 4242, .entry_point = "/srv/app.py:58:handle", .count = 14,
	.ts = 1764000060.25, .window_s = 60,
};

/* ---- helpers --------------------------------------------------------------------------- */

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static int make_tmpdir(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/aiocopd-svclog-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	return nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *tmp_path(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	return p;
}

/* The whole of fd, until EOF. */
static char *read_all(int fd, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t k;

	assert_non_null(buf);
	while ((k = read(fd, buf + n, cap - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		assert_true(k > 0);
		n += (size_t)k;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static char *read_path(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *text;

	assert_true(fd >= 0);
	text = read_all(fd, len);
	close(fd);
	return text;
}

/* One JSON object, strictly and as UTF-8, that is all of text; NULL when it is not one. */
static struct json_object *parse_strict(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	assert_non_null(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *get_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

/* The lines of text (it must end in '\n'); each NUL-terminated in place. */
static size_t split_lines(char *text, size_t len, char **line, size_t *line_len, size_t max)
{
	size_t n = 0;

	assert_true(len > 0 && text[len - 1] == '\n');
	for (char *p = text, *nl; p < text + len; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(text + len - p));
		assert_non_null(nl);
		assert_true(n < max);
		*nl = 0;
		line[n] = p;
		line_len[n++] = (size_t)(nl - p);
	}
	return n;
}

/* A record line: valid JSON of that type, with the service and the command line. */
static struct json_object *check_record(const char *line, size_t len, const char *type)
{
	struct json_object *o = parse_strict(line, len);

	if (!o)
		fail_msg("not one JSON object: %.200s", line);
	assert_string_equal(get_string(o, "type"), type);
	assert_string_equal(get_string(o, "service"), SERVICE);
	if (strcmp(type, "suppressed"))
		assert_string_equal(get_string(o, "cmdline"), CMDLINE_TEXT);
	return o;
}

static void check_suppressed_object(struct json_object *o)
{
	struct json_object *v;

	assert_string_equal(get_string(o, "entry_point"), "/srv/app.py:58:handle");
	assert_true(json_object_object_get_ex(o, "count", &v));
	assert_int_equal(json_object_get_int64(v), 14);
	assert_true(json_object_object_get_ex(o, "pid", &v));
	assert_int_equal(json_object_get_int(v), 4242);
	assert_true(json_object_object_get_ex(o, "window_s", &v));
	assert_true(json_object_get_double(v) == 60.0);
	assert_true(json_object_object_get_ex(o, "ts", &v));
	assert_true(json_object_get_double(v) == 1764000060.25);
}

static struct service_log *open_file_log(const char *path)
{
	struct service_log *l;
	char err[512] = "";

	if (service_log_open(&l, SERVICE_LOG_FILE, path, err, sizeof(err)))
		fail_msg("open: %s", err);
	return l;
}

/*
 * In a forked child: cmocka's handlers would carry a crash back into the test runner's
 * loop, in the child; a crash is to end the child, for the parent to see.
 */
static pid_t fork_child(void)
{
	static const int crash[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	pid_t pid;

	fflush(stdout);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		for (size_t i = 0; i < sizeof(crash) / sizeof(crash[0]); i++)
			signal(crash[i], SIG_DFL);
	return pid;
}

static int wait_child(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFSIGNALED(status))
		fail_msg("child killed by signal %d", WTERMSIG(status));
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* Records of every kind, n of them, each checked for 0. */
static int write_mixed(struct service_log *l, unsigned n)
{
	struct report r;
	int failed = 0;

	for (unsigned i = 0; i < n; i++) {
		switch (i % 4) {
		case 0:
			make_report(&r, LEVEL_HIGH, "the-sleeper", 1, 0);
			break;
		case 1:
			make_report(&r, LEVEL_MEDIUM, NULL, 2, 100);
			break;
		case 2:
			make_iteration(&r);
			break;
		default:
			failed += service_log_suppressed(l, &held) != 0;
			continue;
		}
		failed += service_log_report(l, &r, SERVICE, CMDLINE) != 0;
		report_free(&r);
	}
	return failed;
}

/* Checks text as the n records write_mixed wrote. */
static void check_mixed(char *text, size_t len, unsigned n)
{
	static const char *types[] = { "slow_task", "slow_task", "slow_iteration", "suppressed" };
	char **line = calloc(n + 1, sizeof(*line));
	size_t *line_len = calloc(n + 1, sizeof(*line_len));

	assert_non_null(line);
	assert_non_null(line_len);
	assert_int_equal(split_lines(text, len, line, line_len, n + 1), n);
	for (unsigned i = 0; i < n; i++) {
		struct json_object *o = check_record(line[i], line_len[i], types[i % 4]);

		if (i % 4 == 3)
			check_suppressed_object(o);
		json_object_put(o);
	}
	free(line);
	free(line_len);
}

/* ---- JSON lines ------------------------------------------------------------------------ */

static void test_file_lines_are_json(void **state)
{
	char *path = tmp_path("reports.jsonl"), *text;
	struct service_log *l = open_file_log(path);
	size_t len;

	assert_int_equal(write_mixed(l, 400), 0);
	service_log_close(l);
	text = read_path(path, &len);
	check_mixed(text, len, 400);
	/* appended to, not truncated, when opened again */
	l = open_file_log(path);
	assert_int_equal(write_mixed(l, 4), 0);
	service_log_close(l);
	free(text);
	text = read_path(path, &len);
	check_mixed(text, len, 404);
	free(text);
	free(path);
}

static void test_file_mode_is_0640(void **state)
{
	char *path = tmp_path("mode.jsonl");
	mode_t old = umask(0);
	struct service_log *l = open_file_log(path);
	struct stat st;

	umask(old);
	service_log_close(l);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	free(path);
}

/*
 * Writers that each give a record to one write(2) of an O_APPEND file never mix their
 * bytes; records written in pieces would, and these are 64 KiB each.
 */
static void test_concurrent_writers_keep_lines_whole(void **state)
{
	enum { WRITERS = 4, RECORDS = 150 };
	char *path = tmp_path("shared.jsonl"), *text, **line;
	unsigned per_pid[WRITERS] = { 0 };
	pid_t pid[WRITERS];
	size_t len, n, *line_len;

	for (int w = 0; w < WRITERS; w++) {
		pid[w] = fork_child();
		if (!pid[w]) {
			struct service_log *l;
			struct report r;
			char err[256];
			int failed = 0;

			if (service_log_open(&l, SERVICE_LOG_FILE, path, err, sizeof(err)))
				_exit(2);
			for (int i = 0; i < RECORDS; i++) {
				make_report(&r, LEVEL_HIGH, "writer", 4, 16384);
				r.pid = (uint32_t)(1000 + w);
				failed += service_log_report(l, &r, SERVICE, CMDLINE) != 0;
				report_free(&r);
			}
			service_log_close(l);
			_exit(failed ? 1 : 0);
		}
	}
	for (int w = 0; w < WRITERS; w++)
		assert_int_equal(wait_child(pid[w]), 0);
	text = read_path(path, &len);
	line = calloc(WRITERS * RECORDS + 1, sizeof(*line));
	line_len = calloc(WRITERS * RECORDS + 1, sizeof(*line_len));
	assert_non_null(line);
	assert_non_null(line_len);
	n = split_lines(text, len, line, line_len, WRITERS * RECORDS + 1);
	assert_int_equal(n, WRITERS * RECORDS);
	for (size_t i = 0; i < n; i++) {
		struct json_object *o = check_record(line[i], line_len[i], "slow_task"), *v;

		assert_true(line_len[i] > 65536);
		assert_true(json_object_object_get_ex(o, "pid", &v));
		assert_in_range(json_object_get_int(v), 1000, 1000 + WRITERS - 1);
		per_pid[json_object_get_int(v) - 1000]++;
		json_object_put(o);
	}
	for (int w = 0; w < WRITERS; w++)
		assert_int_equal(per_pid[w], RECORDS);
	free(line);
	free(line_len);
	free(text);
	free(path);
}

static void test_long_cmdline_is_cut_on_a_character(void **state)
{
	char *path = tmp_path("cmdline.jsonl"), *text, *cmd = malloc(100001);
	struct service_log *l = open_file_log(path);
	struct json_object *o;
	const char *got;
	struct report r;
	size_t len;

	assert_non_null(cmd);
	cmd[0] = 'x';			/* 1 + 2k bytes: the cut falls inside an "é" */
	for (size_t i = 1; i + 2 <= 100000; i += 2)
		memcpy(cmd + i, "\xc3\xa9", 2);
	cmd[99999] = 0;
	make_report(&r, LEVEL_LOW, NULL, 1, 0);
	assert_int_equal(service_log_report(l, &r, SERVICE, cmd), 0);
	report_free(&r);
	service_log_close(l);
	text = read_path(path, &len);
	assert_true(len < 8192);
	o = parse_strict(text, len - 1);
	assert_non_null(o);
	got = get_string(o, "cmdline");
	assert_true(strlen(got) <= SERVICE_LOG_CMDLINE_MAX + 3);
	assert_true(strlen(got) > SERVICE_LOG_CMDLINE_MAX - 4);
	assert_memory_equal(got, cmd, strlen(got) - 3);
	assert_string_equal(got + strlen(got) - 3, "\xe2\x80\xa6");
	assert_null(strstr(got, "\xef\xbf\xbd"));	/* no character broken */
	json_object_put(o);
	free(text);
	free(cmd);
	free(path);
}

static size_t count_lines(const char *path)
{
	size_t len, n = 0;
	char *text = read_path(path, &len);

	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	free(text);
	return n;
}

static void test_reopen_after_rename(void **state)
{
	char *dir = tmp_path("rot"), *moved_dir = tmp_path("rot.gone");
	char *path, *rotated, *kept;
	struct service_log *l;

	assert_int_equal(mkdir(dir, 0755), 0);
	assert_true(asprintf(&path, "%s/reports.jsonl", dir) > 0);
	assert_true(asprintf(&rotated, "%s/reports.jsonl.1", dir) > 0);
	assert_true(asprintf(&kept, "%s/reports.jsonl", moved_dir) > 0);
	l = open_file_log(path);
	assert_int_equal(write_mixed(l, 3), 0);
	/* logrotate: the file renamed, then SIGUSR1 */
	assert_int_equal(rename(path, rotated), 0);
	assert_int_equal(write_mixed(l, 1), 0);		/* still the old one */
	assert_int_equal(service_log_reopen(l), 0);
	assert_int_equal(write_mixed(l, 2), 0);
	assert_int_equal(count_lines(rotated), 4);
	assert_int_equal(count_lines(path), 2);
	/* the path cannot be opened again: the old file goes on, the error comes back */
	assert_int_equal(rename(dir, moved_dir), 0);
	assert_int_equal(service_log_reopen(l), -ENOENT);
	assert_int_equal(write_mixed(l, 5), 0);
	assert_int_equal(count_lines(kept), 7);
	service_log_close(l);
	free(dir);
	free(moved_dir);
	free(path);
	free(rotated);
	free(kept);
}

static void test_reopen_of_journal_and_stdout(void **state)
{
	struct service_log *l;
	char err[64];

	assert_int_equal(service_log_open(&l, SERVICE_LOG_STDOUT, NULL, err, sizeof(err)), 0);
	assert_int_equal(service_log_reopen(l), 0);
	service_log_close(l);
	assert_int_equal(service_log_open(&l, SERVICE_LOG_JOURNAL, NULL, err, sizeof(err)), 0);
	assert_int_equal(service_log_reopen(l), 0);
	service_log_close(l);
}

static void expect_open_error(const char *path, int error)
{
	struct service_log *l = (struct service_log *)&l;	/* open must set it to NULL */
	char err[512], want[512];

	assert_int_equal(service_log_open(&l, SERVICE_LOG_FILE, path, err, sizeof(err)), -error);
	assert_null(l);
	snprintf(want, sizeof(want), "log file:%s: %s", path, strerror(error));
	assert_string_equal(err, want);
}

static void test_unwritable_path(void **state)
{
	char *missing = tmp_path("no/such/dir/reports.jsonl"), *ro = tmp_path("ro");
	char *denied, err[512] = "", want[512];
	int pipefd[2];
	ssize_t n;
	pid_t pid;

	expect_open_error(missing, ENOENT);
	expect_open_error(tmpdir, EISDIR);
	/* Permission denied: root passes any mode, so the child drops to nobody first */
	assert_int_equal(mkdir(ro, 0755), 0);
	assert_int_equal(chmod(ro, 0555), 0);
	assert_true(asprintf(&denied, "%s/reports.jsonl", ro) > 0);
	assert_int_equal(pipe(pipefd), 0);
	pid = fork_child();
	if (!pid) {
		struct service_log *l;
		int ret;

		close(pipefd[0]);
		if (geteuid() == 0 && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
			_exit(2);
		ret = service_log_open(&l, SERVICE_LOG_FILE, denied, err, sizeof(err));
		if (write(pipefd[1], err, strlen(err)) < 0)
			_exit(3);
		_exit(ret == -EACCES && !l ? 0 : 1);
	}
	close(pipefd[1]);
	n = read(pipefd[0], err, sizeof(err) - 1);
	assert_true(n > 0);
	err[n] = 0;
	close(pipefd[0]);
	assert_int_equal(wait_child(pid), 0);
	snprintf(want, sizeof(want), "log file:%s: Permission denied", denied);
	assert_string_equal(err, want);
	free(missing);
	free(ro);
	free(denied);
}

/* Milliseconds since a. */
static uint32_t ms_between(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (uint32_t)((b.tv_sec - a->tv_sec) * 1000 + (b.tv_nsec - a->tv_nsec) / 1000000);
}

/* A child whose fd 1 is a pipe the parent reads; returns the child's pid, *rd the pipe. */
static pid_t fork_with_stdout_pipe(int *rd)
{
	int p[2];
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork_child();
	if (!pid) {
		if (dup2(p[1], STDOUT_FILENO) != STDOUT_FILENO)
			_exit(2);
		close(p[0]);
		return 0;
	}
	close(p[1]);
	*rd = p[0];
	return pid;
}

static void test_stdout_lines(void **state)
{
	size_t len;
	char *text;
	int rd;
	pid_t pid = fork_with_stdout_pipe(&rd);

	if (!pid) {
		struct service_log *l;
		char err[64];
		int failed;

		if (service_log_open(&l, SERVICE_LOG_STDOUT, NULL, err, sizeof(err)))
			_exit(3);
		failed = write_mixed(l, 200);
		service_log_close(l);
		_exit(failed ? 1 : 0);
	}
	text = read_all(rd, &len);
	close(rd);
	assert_int_equal(wait_child(pid), 0);
	check_mixed(text, len, 200);
	free(text);
}

/* fd 1, a 4 KiB pipe that does not wait: records of 48 KiB go in many parts. */
static struct service_log *small_nonblocking_stdout(void)
{
	struct service_log *l;
	char err[64];

	if (fcntl(STDOUT_FILENO, F_SETPIPE_SZ, 4096) < 0 ||
	    fcntl(STDOUT_FILENO, F_SETFL, fcntl(STDOUT_FILENO, F_GETFL) | O_NONBLOCK) < 0 ||
	    service_log_open(&l, SERVICE_LOG_STDOUT, NULL, err, sizeof(err)))
		_exit(3);
	return l;
}

static int write_big(struct service_log *l)
{
	struct report r;
	int ret;

	make_report(&r, LEVEL_HIGH, "big", 3, 16384);
	ret = service_log_report(l, &r, SERVICE, CMDLINE);
	report_free(&r);
	return ret;
}

/* A slow reader: each record is finished in parts as the pipe drains. */
static void test_pipe_parts_are_finished(void **state)
{
	enum { RECORDS = 12 };
	char *text, *line[RECORDS + 1], buf[4096];
	size_t len = 0, cap = 1 << 20, line_len[RECORDS + 1];
	int rd;
	ssize_t k;
	pid_t pid = fork_with_stdout_pipe(&rd);

	if (!pid) {
		struct service_log *l = small_nonblocking_stdout();
		int failed = 0;

		for (int i = 0; i < RECORDS; i++)
			failed += write_big(l) != 0;
		_exit(failed);
	}
	text = malloc(cap);
	assert_non_null(text);
	while ((k = read(rd, buf, sizeof(buf))) > 0) {
		assert_true(len + (size_t)k <= cap);
		memcpy(text + len, buf, (size_t)k);
		len += (size_t)k;
		usleep(200);
	}
	close(rd);
	assert_int_equal(wait_child(pid), 0);
	assert_int_equal(split_lines(text, len, line, line_len, RECORDS + 1), RECORDS);
	for (int i = 0; i < RECORDS; i++)
		json_object_put(check_record(line[i], line_len[i], "slow_task"));
	free(text);
}

/*
 * Nobody reads: the record is cut after the pipe's 4 KiB and even its '\n' is refused, after
 * a second's wait; the next record, the reader still away, fails at once. Once the reader
 * is back, the next record ends that line first, so it is a line of its own.
 */
static void test_pipe_cut_record_is_ended_by_the_next(void **state)
{
	char *text, *line[4], go;
	size_t len, line_len[4];
	int sync[2], rd;
	struct json_object *o;
	pid_t pid;

	assert_int_equal(pipe(sync), 0);
	pid = fork_with_stdout_pipe(&rd);
	if (!pid) {
		struct service_log *l = small_nonblocking_stdout();
		struct timespec t0;
		int cut, again;

		close(sync[0]);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		cut = write_big(l);
		if (cut != -EAGAIN || ms_between(&t0) < 900)
			_exit(4);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		again = write_big(l);
		if (again != -EAGAIN || ms_between(&t0) > 500)
			_exit(5);
		if (write(sync[1], "g", 1) != 1 ||
		    poll(&(struct pollfd){ .fd = STDOUT_FILENO, .events = POLLOUT }, 1, 5000) != 1)
			_exit(6);
		if (write_big(l) || service_log_suppressed(l, &held))
			_exit(7);
		_exit(0);
	}
	close(sync[1]);
	assert_int_equal(read(sync[0], &go, 1), 1);
	close(sync[0]);
	text = read_all(rd, &len);
	close(rd);
	assert_int_equal(wait_child(pid), 0);
	assert_int_equal(split_lines(text, len, line, line_len, 4), 3);
	assert_int_equal(line_len[0], 4096);		/* what the pipe took of the first */
	assert_null(parse_strict(line[0], line_len[0]));
	assert_memory_equal(line[0], "{\"type\":\"slow_task\"", 19);
	json_object_put(check_record(line[1], line_len[1], "slow_task"));
	o = check_record(line[2], line_len[2], "suppressed");
	check_suppressed_object(o);
	json_object_put(o);
	free(text);
}

/*
 * A file that may grow no more (RLIMIT_FSIZE, as a full disk): the record that crosses the
 * limit is cut there, its '\n' refused too; once there is room, the next record ends that
 * line before its own.
 */
static void test_file_cut_by_size_limit(void **state)
{
	char *path = tmp_path("limited.jsonl"), *text, *line[8];
	size_t len, line_len[8], n;
	pid_t pid = fork_child();

	if (!pid) {
		struct service_log *l;
		struct rlimit lim;
		char err[256];
		int ret, i = 0;

		signal(SIGXFSZ, SIG_IGN);
		/* the limit is lowered and raised again: that needs no hard limit */
		if (getrlimit(RLIMIT_FSIZE, &lim) || lim.rlim_max != RLIM_INFINITY)
			_exit(CHILD_SKIP);
		lim.rlim_cur = 10000;
		if (service_log_open(&l, SERVICE_LOG_FILE, path, err, sizeof(err)) ||
		    setrlimit(RLIMIT_FSIZE, &lim))
			_exit(2);
		while (!(ret = write_big(l)) && ++i < 100)
			;
		if (ret != -EFBIG || i != 0)	/* a 48 KiB record crosses at once */
			_exit(3);
		if (write_big(l) != -EFBIG)	/* no room even for the '\n' */
			_exit(4);
		lim.rlim_cur = RLIM_INFINITY;
		if (setrlimit(RLIMIT_FSIZE, &lim) || write_big(l) ||
		    service_log_suppressed(l, &held))
			_exit(5);
		service_log_close(l);
		_exit(0);
	}
	n = (size_t)wait_child(pid);
	if (n == CHILD_SKIP)
		skip();
	assert_int_equal(n, 0);
	text = read_path(path, &len);
	assert_int_equal(split_lines(text, len, line, line_len, 8), 3);
	assert_int_equal(line_len[0], 10000);
	assert_null(parse_strict(line[0], line_len[0]));
	json_object_put(check_record(line[1], line_len[1], "slow_task"));
	json_object_put(check_record(line[2], line_len[2], "suppressed"));
	free(text);
	free(path);
}

/* ---- the journal ----------------------------------------------------------------------- */

#define JOURNAL_DIR	"/run/systemd/journal"
#define JOURNAL_SOCK	JOURNAL_DIR "/socket"
#define MAX_FIELDS	64

/* What the child says of one record: what the call returned and the entry it sent. */
struct said {
	int32_t ret;
	uint32_t len;
	uint32_t ms;			/* how long the call took */
};

static void say(int fd, int ret, const void *data, size_t len, uint32_t ms)
{
	struct said s = { .ret = ret, .len = (uint32_t)len, .ms = ms };

	if (write(fd, &s, sizeof(s)) != sizeof(s) ||
	    (len && write(fd, data, len) != (ssize_t)len))
		_exit(10);
}

/* One datagram from the socket: inline, or (too large for one) a memfd passed along. */
static char *receive_entry(int sock, size_t *len)
{
	static char buf[16 << 20];
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
			     .msg_controllen = sizeof(control) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return NULL;
	c = CMSG_FIRSTHDR(&mh);
	if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
		int fd;

		memcpy(&fd, CMSG_DATA(c), sizeof(fd));
		n = pread(fd, buf, sizeof(buf), 0);
		close(fd);
		if (n < 0)
			return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* Sends one record (a report, or the suppressed summary when r is NULL), says what came. */
static void send_and_say(int out, int sock, struct service_log *l, const struct report *r,
			 const char *cmdline)
{
	struct timespec t0;
	size_t len = 0;
	char *entry;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	ret = r ? service_log_report(l, r, SERVICE, cmdline) : service_log_suppressed(l, &held);
	entry = sock >= 0 ? receive_entry(sock, &len) : NULL;
	say(out, ret, entry, entry ? len : 0, ms_between(&t0));
}

/* The journal cases, in the child; exit CHILD_SKIP when no mount namespace can be made. */
static void journal_child(int out, const char *big_cmdline)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCK };
	struct service_log *l;
	struct report r;
	char err[64];
	int sock, size = 32 << 20;

	if (unshare(CLONE_NEWNS)) {
		say(out, -errno, NULL, 0, 0);
		_exit(CHILD_SKIP);
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m") ||
	    mkdir("/run/systemd", 0755) || mkdir(JOURNAL_DIR, 0755))
		_exit(11);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || bind(sock, (struct sockaddr *)&sa, sizeof(sa)))
		_exit(12);
	setsockopt(sock, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	if (service_log_open(&l, SERVICE_LOG_JOURNAL, NULL, err, sizeof(err)))
		_exit(13);
	make_report(&r, LEVEL_HIGH, "the\nsleeper", 1, 0);
	send_and_say(out, sock, l, &r, CMDLINE);
	report_free(&r);
	make_report(&r, LEVEL_MEDIUM, NULL, 1, 0);
	send_and_say(out, sock, l, &r, CMDLINE);
	report_free(&r);
	make_report(&r, LEVEL_LOW, "low", 1, 0);
	send_and_say(out, sock, l, &r, CMDLINE);
	report_free(&r);
	make_iteration(&r);
	send_and_say(out, sock, l, &r, CMDLINE);
	report_free(&r);
	send_and_say(out, sock, l, NULL, NULL);
	/* a large entry, and the largest command line */
	make_report(&r, LEVEL_HIGH, "big", 64, 8192);
	send_and_say(out, sock, l, &r, big_cmdline);
	/* the socket's file there, nobody bound to it; then no socket at all */
	close(sock);
	send_and_say(out, -1, l, &r, CMDLINE);
	unlink(JOURNAL_SOCK);
	send_and_say(out, -1, l, &r, CMDLINE);
	report_free(&r);
	service_log_close(l);
	_exit(0);
}

/* The fields of a native-protocol entry: NAME=value\n, or NAME\n, le64 size, value, \n. */
struct entry {
	size_t n;
	char *name[MAX_FIELDS];
	char *value[MAX_FIELDS];
	bool binary[MAX_FIELDS];
};

static void parse_entry(const char *p, size_t len, struct entry *e)
{
	size_t off = 0;

	memset(e, 0, sizeof(*e));
	while (off < len) {
		size_t name_end = off, vlen;
		const char *v;

		while (name_end < len && p[name_end] != '=' && p[name_end] != '\n')
			name_end++;
		assert_true(name_end < len && name_end > off);
		assert_true(e->n < MAX_FIELDS);
		e->name[e->n] = strndup(p + off, name_end - off);
		if (p[name_end] == '=') {
			const char *nl = memchr(p + name_end, '\n', len - name_end);

			assert_non_null(nl);
			v = p + name_end + 1;
			vlen = (size_t)(nl - v);
			off = (size_t)(nl - p) + 1;
		} else {
			uint64_t le;

			assert_true(name_end + 1 + 8 <= len);
			memcpy(&le, p + name_end + 1, 8);
			vlen = (size_t)le;		/* x86: little-endian already */
			v = p + name_end + 9;
			assert_true(name_end + 9 + vlen + 1 <= len);
			assert_int_equal(v[vlen], '\n');
			off = name_end + 9 + vlen + 1;
			e->binary[e->n] = true;
		}
		e->value[e->n] = strndup(v, vlen);
		assert_int_equal(strlen(e->value[e->n]), vlen);	/* no NUL inside */
		e->n++;
	}
}

static void entry_free(struct entry *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->name[i]);
		free(e->value[i]);
	}
}

/* The one value of name (it must be there once), or NULL when wanted absent. */
static const char *field_of(const struct entry *e, const char *name)
{
	const char *v = NULL;
	unsigned seen = 0;

	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->name[i], name)) {
			v = e->value[i];
			seen++;
		}
	assert_true(seen <= 1);
	return v;
}

static void expect_field(const struct entry *e, const char *name, const char *value)
{
	const char *v = field_of(e, name);

	if (!v)
		fail_msg("no field %s", name);
	assert_string_equal(v, value);
}

/* AIOCOPD_ENTRY_POINT, and the CODE_* fields: the Python code's, once, none of the C caller's. */
static void expect_where(const struct entry *e, const char *where, const char *file,
			 const char *line, const char *func)
{
	expect_field(e, "AIOCOPD_ENTRY_POINT", where);
	expect_field(e, "CODE_FILE", file);
	expect_field(e, "CODE_LINE", line);
	expect_field(e, "CODE_FUNC", func);
}

static bool field_binary(const struct entry *e, const char *name)
{
	for (size_t i = 0; i < e->n; i++)
		if (!strcmp(e->name[i], name))
			return e->binary[i];
	return false;
}

/* What the child said, read in full: n records. */
struct heard {
	size_t n;
	struct said said[16];
	char *entry[16];
};

static void hear(int fd, struct heard *h)
{
	memset(h, 0, sizeof(*h));
	while (h->n < 16) {
		struct said *s = &h->said[h->n];
		ssize_t k = read(fd, s, sizeof(*s));
		size_t got = 0;

		if (k == 0)
			break;
		assert_int_equal(k, sizeof(*s));
		h->entry[h->n] = malloc(s->len + 1);
		assert_non_null(h->entry[h->n]);
		while (got < s->len) {
			k = read(fd, h->entry[h->n] + got, s->len - got);
			assert_true(k > 0);
			got += (size_t)k;
		}
		h->entry[h->n][s->len] = 0;
		h->n++;
	}
}

static char *first_text_line(const struct report *r)
{
	char *text = NULL, *nl;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);

	assert_non_null(m);
	report_write_text(m, r, false);
	fclose(m);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	*nl = 0;
	return text;
}

/* The common fields of every entry, and AIOCOPD_REPORT as the object of the JSON line. */
static struct json_object *check_common(const struct entry *e, const char *type)
{
	const char *json = field_of(e, "AIOCOPD_REPORT");
	struct json_object *o;

	expect_field(e, "SYSLOG_IDENTIFIER", "aiocopd");
	expect_field(e, "AIOCOPD_TYPE", type);
	expect_field(e, "AIOCOPD_SERVICE", SERVICE);
	expect_field(e, "AIOCOPD_PID", "4242");
	assert_non_null(json);
	o = check_record(json, strlen(json), type);
	return o;
}

static void check_task_entry(const struct heard *h)
{
	struct report r;
	struct entry e;
	char *first;
	struct json_object *o;

	assert_int_equal(h->said[0].ret, 0);
	parse_entry(h->entry[0], h->said[0].len, &e);
	make_report(&r, LEVEL_HIGH, "the\nsleeper", 1, 0);
	first = first_text_line(&r);
	assert_non_null(strstr(first, "SLOW TASK DETECTED"));
	expect_field(&e, "MESSAGE", first);
	expect_field(&e, "PRIORITY", "4");
	o = check_common(&e, "slow_task");
	expect_field(&e, "AIOCOPD_TID", "4243");
	expect_field(&e, "AIOCOPD_ELAPSED_MS", "61.2");
	expect_field(&e, "AIOCOPD_SEVERITY", "high");
	expect_field(&e, "AIOCOPD_SEVERITY_SCORE", "50");
	expect_field(&e, "AIOCOPD_REASON", "io_blocking");
	expect_where(&e, WHERE, "/srv/app.py", "7", "sleeper");
	/* values holding newlines survive, as binary fields of the native protocol */
	expect_field(&e, "AIOCOPD_TASK", "the\nsleeper");
	assert_true(field_binary(&e, "AIOCOPD_TASK"));
	expect_field(&e, "AIOCOPD_CMDLINE", CMDLINE_TEXT);
	assert_true(field_binary(&e, "AIOCOPD_CMDLINE"));
	assert_false(field_binary(&e, "MESSAGE"));
	assert_string_equal(get_string(json_object_object_get(o, "task"), "name"), "the\nsleeper");
	json_object_put(o);
	free(first);
	report_free(&r);
	entry_free(&e);
}

static void check_level_entries(const struct heard *h)
{
	struct entry e;

	assert_int_equal(h->said[1].ret, 0);
	parse_entry(h->entry[1], h->said[1].len, &e);
	expect_field(&e, "PRIORITY", "5");
	expect_field(&e, "AIOCOPD_SEVERITY", "medium");
	expect_field(&e, "AIOCOPD_CALLBACK", "Protocol.data_received");
	assert_null(field_of(&e, "AIOCOPD_TASK"));	/* a plain callback */
	json_object_put(check_common(&e, "slow_task"));
	entry_free(&e);
	assert_int_equal(h->said[2].ret, 0);
	parse_entry(h->entry[2], h->said[2].len, &e);
	expect_field(&e, "PRIORITY", "6");
	expect_field(&e, "AIOCOPD_SEVERITY", "low");
	entry_free(&e);
}

static void check_iteration_entry(const struct heard *h)
{
	struct report r;
	struct entry e;
	char *first;

	assert_int_equal(h->said[3].ret, 0);
	parse_entry(h->entry[3], h->said[3].len, &e);
	make_iteration(&r);
	first = first_text_line(&r);
	expect_field(&e, "MESSAGE", first);
	json_object_put(check_common(&e, "slow_iteration"));
	expect_field(&e, "AIOCOPD_CALLBACKS", "300");
	expect_where(&e, "/srv/lag.py:31:tick", "/srv/lag.py", "31", "tick");
	free(first);
	report_free(&r);
	entry_free(&e);
}

static void check_suppressed_entry(const struct heard *h)
{
	struct json_object *o;
	struct entry e;

	assert_int_equal(h->said[4].ret, 0);
	parse_entry(h->entry[4], h->said[4].len, &e);
	expect_field(&e, "MESSAGE",
		     "suppressed 14 reports of PID 4242 at app.py:58:handle in the last minute");
	expect_field(&e, "PRIORITY", "5");
	o = check_common(&e, "suppressed");
	check_suppressed_object(o);
	expect_field(&e, "AIOCOPD_COUNT", "14");
	expect_where(&e, "/srv/app.py:58:handle", "/srv/app.py", "58", "handle");
	json_object_put(o);
	entry_free(&e);
}

static void check_big_entry(const struct heard *h)
{
	const char *cmdline;
	struct entry e;

	assert_int_equal(h->said[5].ret, 0);
	assert_true(h->said[5].len > 64 * 8192);
	parse_entry(h->entry[5], h->said[5].len, &e);
	json_object_put(parse_strict(field_of(&e, "AIOCOPD_REPORT"),
				     strlen(field_of(&e, "AIOCOPD_REPORT"))));
	cmdline = field_of(&e, "AIOCOPD_CMDLINE");
	assert_non_null(cmdline);
	assert_int_equal(strlen(cmdline), SERVICE_LOG_CMDLINE_MAX + 3);
	entry_free(&e);
}

static void test_journal_entries(void **state)
{
	char *big_cmdline = malloc(200001);
	struct heard h;
	int p[2], status;
	pid_t pid;

	assert_non_null(big_cmdline);
	memset(big_cmdline, 'c', 200000);
	big_cmdline[200000] = 0;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork_child();
	if (!pid) {
		close(p[0]);
		journal_child(p[1], big_cmdline);
	}
	close(p[1]);
	hear(p[0], &h);
	close(p[0]);
	status = wait_child(pid);
	if (status == CHILD_SKIP) {
		const char *ci = getenv("CI");

		if (ci && !strcmp(ci, "true"))
			fail_msg("no mount namespace (unshare: %s) under CI",
				 strerror(-h.said[0].ret));
		skip();
	}
	assert_int_equal(status, 0);
	assert_int_equal(h.n, 8);
	check_task_entry(&h);
	check_level_entries(&h);
	check_iteration_entry(&h);
	check_suppressed_entry(&h);
	check_big_entry(&h);
	/* nobody at the socket, then no socket: the error, at once */
	assert_int_equal(h.said[6].ret, -ECONNREFUSED);
	assert_int_equal(h.said[7].ret, -ENOENT);
	assert_true(h.said[6].ms < 1000 && h.said[7].ms < 1000);
	for (size_t i = 0; i < h.n; i++)
		free(h.entry[i]);
	free(big_cmdline);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_file_lines_are_json),
		cmocka_unit_test(test_file_mode_is_0640),
		cmocka_unit_test(test_concurrent_writers_keep_lines_whole),
		cmocka_unit_test(test_long_cmdline_is_cut_on_a_character),
		cmocka_unit_test(test_reopen_after_rename),
		cmocka_unit_test(test_reopen_of_journal_and_stdout),
		cmocka_unit_test(test_unwritable_path),
		cmocka_unit_test(test_stdout_lines),
		cmocka_unit_test(test_pipe_parts_are_finished),
		cmocka_unit_test(test_pipe_cut_record_is_ended_by_the_next),
		cmocka_unit_test(test_file_cut_by_size_limit),
		cmocka_unit_test(test_journal_entries),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
