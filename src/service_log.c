// SPDX-License-Identifier: GPL-2.0
/*
 * Where the service writes what it finds (see service_log.h). The file and stdout get one
 * JSON line per record, built whole in memory and handed to one write(2): with O_APPEND
 * that keeps lines whole even beside other writers. What a full pipe took only part of is
 * finished, and a line that a full disk cut short is ended before the next record, so a
 * reader loses that record and no other. The journal gets one entry per record
 * through sd_journal_sendv, whose native protocol carries values holding newlines; its
 * CODE_* fields name the Python code the report points at, never this file.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* without it, sd_journal_sendv is a macro adding this file's CODE_FILE, CODE_LINE, CODE_FUNC */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "service_log.h"
#include "text_paths.h"

#define JOURNAL_SOCKET	"/run/systemd/journal/socket"
#define FINISH_MS	1000	/* a record waits this long at most for a full pipe */
#define JOURNAL_FIELDS	32
#define MINUTE_S	60

struct service_log {
	enum service_log_kind kind;
	int fd;				/* the file's, stdout's, or -1 (the journal) */
	char *path;
	bool line_open;			/* a record was cut short: '\n' comes first */
	bool stalled;			/* the last record timed out waiting for its reader */
	dev_t dev;			/* of the file open now: reopening the same file */
	ino_t ino;			/* keeps line_open, a new one starts clean */
};

/* ---- the JSON objects ------------------------------------------------------------------ */

/* Whether byte c continues a UTF-8 sequence (10xxxxxx). */
static bool utf8_continuation(char c)
{
	return ((unsigned char)c & 0xc0) == 0x80;
}

/*
 * A command line from the target can be of any size (the caller bounds what it reads, this
 * bounds what is written): past SERVICE_LOG_CMDLINE_MAX bytes it is cut on a character
 * boundary and ends in "…".
 */
static struct json_object *cmdline_text(const char *cmdline)
{
	size_t n = strnlen(cmdline, SERVICE_LOG_CMDLINE_MAX + 1);
	struct json_object *j;
	char *cut;

	if (n <= SERVICE_LOG_CMDLINE_MAX)
		return json_text(cmdline);
	n = SERVICE_LOG_CMDLINE_MAX;
	for (int k = 0; k < 3 && n > 0 && utf8_continuation(cmdline[n]); k++)
		n--;
	cut = malloc(n + sizeof("\xe2\x80\xa6"));
	if (!cut)
		return json_object_new_string("\xe2\x80\xa6");
	memcpy(cut, cmdline, n);
	memcpy(cut + n, "\xe2\x80\xa6", sizeof("\xe2\x80\xa6"));
	j = json_text(cut);
	free(cut);
	return j;
}

/* SPEC 6.3: SPEC 3's object with the rule's name and the target's command line. */
static struct json_object *report_object(const struct report *r, const char *service,
					 const char *cmdline)
{
	struct json_object *o = report_to_json(r);

	if (!o)
		return NULL;
	json_object_object_add(o, "service", json_text(service ? service : ""));
	json_object_object_add(o, "cmdline", cmdline_text(cmdline ? cmdline : ""));
	return o;
}

static struct json_object *suppressed_object(const struct suppressed *s)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "type", json_object_new_string("suppressed"));
	json_object_object_add(o, "ts", json_rounded(s->ts, 6));
	json_object_object_add(o, "service", json_text(s->service ? s->service : ""));
	json_object_object_add(o, "pid", json_object_new_int(s->pid));
	json_object_object_add(o, "entry_point", json_text(s->entry_point ? s->entry_point : ""));
	json_object_object_add(o, "count", json_object_new_int64((int64_t)s->count));
	json_object_object_add(o, "window_s", json_rounded(s->window_s, 1));
	return o;
}

static const char *json_line_text(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* ---- JSON lines: a file or stdout ------------------------------------------------------ */

static long ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/*
 * Writes len bytes of p, *done of them so far. A pipe or FIFO that is full (they are
 * non-blocking) is waited for, FINISH_MS at most, so that a reader that stopped reading
 * costs the service a second, not its loop; after such a timeout (stalled) a record that
 * cannot even begin fails at once, until the reader is back.
 */
static int put_bytes(int fd, const char *p, size_t len, size_t *done, bool stalled)
{
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (*done < len) {
		long left = FINISH_MS - ms_since(&start);
		ssize_t n = write(fd, p + *done, len - *done);

		if (n > 0) {
			*done += (size_t)n;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		if (left <= 0 || (errno == EAGAIN && stalled && !*done))
			return -EAGAIN;
		if (errno == EAGAIN)
			poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, (int)left);
	}
	return 0;
}

/*
 * One record, one write, unless the file or pipe takes only part of it (a signal, a full
 * pipe, a full disk or RLIMIT_FSIZE): then the rest follows. lead is 1 when buf begins
 * with the '\n' that ends a line left open. A record that stays cut short has its line
 * ended now, or, when even that byte is refused (the disk is still full), by the next
 * record, so that every other record stays a line of its own.
 */
static int write_record(struct service_log *l, const char *buf, size_t len, size_t lead)
{
	size_t done = 0;
	int err = put_bytes(l->fd, buf, len, &done, l->stalled);

	l->stalled = err == -EAGAIN;
	if (done)
		l->line_open = false;
	if (err && done > lead)
		l->line_open = write(l->fd, "\n", 1) != 1;
	return err;
}

static int write_line(struct service_log *l, struct json_object *o)
{
	const char *text = json_line_text(o);
	size_t lead = l->line_open, n, len;
	char *buf;
	int ret;

	if (!text)
		return -ENOMEM;
	n = strlen(text);
	len = lead + n + 1;
	buf = malloc(len);
	if (!buf)
		return -ENOMEM;
	buf[0] = '\n';
	memcpy(buf + lead, text, n);
	buf[len - 1] = '\n';
	ret = write_record(l, buf, len, lead);
	free(buf);
	return ret;
}

/*
 * O_NONBLOCK: a FIFO with no reader fails at once (ENXIO) instead of hanging the service,
 * and a full one is waited for FINISH_MS at most; a regular file ignores it.
 */
static int open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);

	return fd < 0 ? -errno : fd;
}

static void note_file(struct service_log *l, int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		st = (struct stat){ 0 };
	if (st.st_dev != l->dev || st.st_ino != l->ino)
		l->line_open = false;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
}

static int open_file(struct service_log *l, const char *path, char *err, size_t errsz)
{
	int fd;

	if (!path || !*path) {
		snprintf(err, errsz, "log file: no path given");
		return -EINVAL;
	}
	l->path = strdup(path);
	if (!l->path) {
		snprintf(err, errsz, "log file:%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	fd = open_path(path);
	if (fd < 0) {
		snprintf(err, errsz, "log file:%s: %s", path, strerror(-fd));
		return fd;
	}
	l->fd = fd;
	note_file(l, fd);
	return 0;
}

/* ---- the journal ----------------------------------------------------------------------- */

/* The fields of one entry, each "NAME=value"; err: one could not be made. */
struct fields {
	struct iovec iov[JOURNAL_FIELDS];
	int n;
	int err;
};

static void field(struct fields *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void field(struct fields *f, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int len;

	if (f->err)
		return;
	if (f->n == JOURNAL_FIELDS) {
		f->err = -E2BIG;
		return;
	}
	va_start(ap, fmt);
	len = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (len < 0) {
		f->err = -ENOMEM;
		return;
	}
	f->iov[f->n++] = (struct iovec){ .iov_base = s, .iov_len = (size_t)len };
}

static void fields_free(struct fields *f)
{
	for (int i = 0; i < f->n; i++)
		free(f->iov[i].iov_base);
}

/* The JSON object's keys that are AIOCOPD_* fields, when the object has them. */
static const struct {
	const char *field, *key;
} journal_keys[] = {
	{ "AIOCOPD_TYPE", "type" },
	{ "AIOCOPD_SERVICE", "service" },
	{ "AIOCOPD_PID", "pid" },
	{ "AIOCOPD_TID", "tid" },
	{ "AIOCOPD_NS_PID", "ns_pid" },
	{ "AIOCOPD_ELAPSED_MS", "elapsed_ms" },
	{ "AIOCOPD_THRESHOLD_MS", "threshold_ms" },
	{ "AIOCOPD_SEVERITY", "severity_level" },
	{ "AIOCOPD_SEVERITY_SCORE", "severity_score" },
	{ "AIOCOPD_REASON", "reason" },
	{ "AIOCOPD_CALLBACK", "callback" },
	{ "AIOCOPD_CALLBACKS", "callbacks" },
	{ "AIOCOPD_ENTRY_POINT", "entry_point" },
	{ "AIOCOPD_COUNT", "count" },
	{ "AIOCOPD_WINDOW_S", "window_s" },
	{ "AIOCOPD_CMDLINE", "cmdline" },
};

/* A member of o as text, as the JSON line writes it (strings unquoted); NULL when absent. */
static const char *member_text(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

/* The JSON values again as fields: the journal and the JSON lines never disagree. */
static void object_fields(struct fields *f, struct json_object *o)
{
	struct json_object *task;

	for (size_t i = 0; i < sizeof(journal_keys) / sizeof(journal_keys[0]); i++) {
		const char *v = member_text(o, journal_keys[i].key);

		if (v)
			field(f, "%s=%s", journal_keys[i].field, v);
	}
	if (json_object_object_get_ex(o, "task", &task) && task) {
		const char *name = member_text(task, "name"), *coro = member_text(task, "coro");

		if (name)
			field(f, "AIOCOPD_TASK=%s", name);
		if (coro)
			field(f, "AIOCOPD_CORO=%s", coro);
	}
	field(f, "AIOCOPD_REPORT=%s", json_line_text(o));
}

/* CODE_FILE, CODE_LINE and CODE_FUNC of a Python frame "path:line:function", if it is one. */
static void code_fields(struct fields *f, const char *frame)
{
	size_t len, path;
	const char *line, *func;

	if (!frame)
		return;
	len = strlen(frame);
	path = frame_path_len(frame, len);
	if (!path || path == len || len > INT32_MAX)
		return;
	line = frame + path + 1;
	func = strchr(line, ':');
	if (!func || func == line)
		return;
	for (const char *p = line; p < func; p++)
		if (*p < '0' || *p > '9')
			return;
	field(f, "CODE_FILE=%.*s", (int)path, frame);
	field(f, "CODE_LINE=%.*s", (int)(func - line), line);
	if (func[1])
		field(f, "CODE_FUNC=%s", func + 1);
}

/* The entry point as an AIOCOPD_ENTRY_POINT field (valid UTF-8) and as the CODE_* fields. */
static void where_fields(struct fields *f, const char *entry_point)
{
	struct json_object *j = json_text(entry_point ? entry_point : "");
	const char *where = json_object_get_string(j);

	if (!where) {
		f->err = -ENOMEM;
		json_object_put(j);
		return;
	}
	field(f, "AIOCOPD_ENTRY_POINT=%s", where);
	code_fields(f, where);
	json_object_put(j);
}

/*
 * libsystemd drops an entry silently when the socket is missing (ENOENT): look first, so
 * that a lost entry is an error the caller counts. Other errors (a socket nobody is bound
 * to) come back from sd_journal_sendv itself. Its socket blocks: a journald whose queue is
 * full is waited for, as by every other journal client.
 */
static int journal_send(struct fields *f)
{
	struct stat st;

	if (f->err)
		return f->err;
	if (stat(JOURNAL_SOCKET, &st))
		return -errno;
	if (!S_ISSOCK(st.st_mode))
		return -ENOTSOCK;
	return sd_journal_sendv(f->iov, f->n);
}

static int level_priority(enum severity_level level)
{
	switch (level) {
	case LEVEL_HIGH:
		return LOG_WARNING;
	case LEVEL_MEDIUM:
		return LOG_NOTICE;
	default:
		return LOG_INFO;
	}
}

/* The first line of the text report, without colour; NULL when out of memory. */
static char *text_first_line(const struct report *r)
{
	char *text = NULL, *nl;
	size_t size = 0;
	FILE *m = open_memstream(&text, &size);

	if (!m)
		return NULL;
	report_write_text(m, r, false);
	if (fclose(m)) {
		free(text);
		return NULL;
	}
	nl = text ? strchr(text, '\n') : NULL;
	if (nl)
		*nl = 0;
	return text;
}

/* Where a report points: for the loop's lag, the callback that took most of it. */
static const char *report_where(const struct report *r)
{
	if (r->slow_iteration && r->n_top && r->top[0].entry_point)
		return r->top[0].entry_point;
	return report_entry_point(r);
}

static void report_fields(struct fields *f, const struct report *r, struct json_object *o)
{
	char *message = text_first_line(r);

	if (!message) {
		f->err = -ENOMEM;
		return;
	}
	field(f, "MESSAGE=%s", message);
	field(f, "PRIORITY=%d", level_priority(r->level));
	field(f, "SYSLOG_IDENTIFIER=aiocopd");
	object_fields(f, o);
	where_fields(f, report_where(r));
	free(message);
}

/* "suppressed 14 reports of PID 4242 at app.py:58:handle in the last minute" */
static char *suppressed_message(const struct suppressed *s)
{
	const char *where = s->entry_point ? s->entry_point : "";
	size_t path = frame_path_len(where, strlen(where)), size = 0;
	const char *base = where;
	char *text = NULL;
	FILE *m;

	for (size_t i = 0; i < path; i++)
		if (where[i] == '/')
			base = where + i + 1;
	m = open_memstream(&text, &size);
	if (!m)
		return NULL;
	fprintf(m, "suppressed %llu report%s of PID %d at ", (unsigned long long)s->count,
		s->count == 1 ? "" : "s", (int)s->pid);
	report_put_text(m, base);
	if (s->window_s >= MINUTE_S - 0.5)
		fputs(" in the last minute", m);
	else
		fprintf(m, " in the last %.0f s", s->window_s);
	if (fclose(m)) {
		free(text);
		return NULL;
	}
	return text;
}

static void suppressed_fields(struct fields *f, const struct suppressed *s,
			      struct json_object *o)
{
	char *message = suppressed_message(s);

	if (!message) {
		f->err = -ENOMEM;
		return;
	}
	field(f, "MESSAGE=%s", message);
	field(f, "PRIORITY=%d", LOG_NOTICE);
	field(f, "SYSLOG_IDENTIFIER=aiocopd");
	object_fields(f, o);
	code_fields(f, member_text(o, "entry_point"));
	free(message);
}

/* ---- the interface --------------------------------------------------------------------- */

int service_log_open(struct service_log **out, enum service_log_kind kind, const char *path,
		     char *err, size_t errsz)
{
	struct service_log *l = calloc(1, sizeof(*l));
	int ret;

	*out = NULL;
	if (!l) {
		snprintf(err, errsz, "log: %s", strerror(ENOMEM));
		return -ENOMEM;
	}
	l->kind = kind;
	l->fd = kind == SERVICE_LOG_STDOUT ? STDOUT_FILENO : -1;
	if (kind == SERVICE_LOG_FILE) {
		ret = open_file(l, path, err, errsz);
		if (ret) {
			service_log_close(l);
			return ret;
		}
	}
	*out = l;
	return 0;
}

void service_log_close(struct service_log *l)
{
	if (!l)
		return;
	if (l->kind == SERVICE_LOG_FILE && l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l);
}

/* A record as a JSON line, or as the journal entry f holds; NULL o: out of memory. */
static int deliver(struct service_log *l, struct json_object *o, struct fields *f)
{
	int ret = -ENOMEM;

	if (o)
		ret = l->kind == SERVICE_LOG_JOURNAL ? journal_send(f) : write_line(l, o);
	fields_free(f);
	json_object_put(o);
	return ret;
}

int service_log_report(struct service_log *l, const struct report *r, const char *service,
		       const char *cmdline)
{
	struct json_object *o = report_object(r, service, cmdline);
	struct fields f = { .n = 0 };

	if (o && l->kind == SERVICE_LOG_JOURNAL)
		report_fields(&f, r, o);
	return deliver(l, o, &f);
}

int service_log_suppressed(struct service_log *l, const struct suppressed *s)
{
	struct json_object *o = suppressed_object(s);
	struct fields f = { .n = 0 };

	if (o && l->kind == SERVICE_LOG_JOURNAL)
		suppressed_fields(&f, s, o);
	return deliver(l, o, &f);
}

/*
 * logrotate has moved the file: the path is opened again before the old file is let go,
 * so a failed open (a missing directory, a full inode table) loses nothing: writes go on
 * to the old file and the caller hears why.
 */
int service_log_reopen(struct service_log *l)
{
	int fd;

	if (l->kind != SERVICE_LOG_FILE)
		return 0;
	fd = open_path(l->path);
	if (fd < 0)
		return fd;
	close(l->fd);
	l->fd = fd;
	note_file(l, fd);
	return 0;
}
