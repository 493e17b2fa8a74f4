// SPDX-License-Identifier: GPL-2.0
/*
 * The severity model of aiocop, applied to what aiocopd sees: audit events by name, syscalls
 * by number and by the kind of file they touch. Weights: 50 for sleeps, DNS, connect/accept,
 * tree walks, network libraries, process start, input() and imports; 10 for opens, file and
 * socket I/O, thread-lock waits and anything unlisted; 1 for stat-like calls, file locks,
 * kill; 0 for bind. What could not block is no operation at all (SPEC 4), and what took
 * the threshold alone, or held the loop for a multiple of it, is serious whatever its kind.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "classify.h"
#include "syscall_table.h"

#define TIMER_ABSTIME	1
#define CLOCK_MONO	1

const struct audit_rule audit_rules[] = {
	{ "time.sleep",			CAT_SLEEP,	50, 1, COUNTS_ALWAYS },
	{ "socket.getaddrinfo",		CAT_DNS,	50, 2, COUNTS_UNLESS_NUMERIC_HOST },
	{ "socket.gethostbyname",	CAT_DNS,	50, 1, COUNTS_UNLESS_NUMERIC_HOST },
	{ "socket.gethostbyaddr",	CAT_DNS,	50, 1, COUNTS_ALWAYS },
	{ "socket.getnameinfo",		CAT_DNS,	50, 1, COUNTS_ALWAYS },
	{ "socket.connect",		CAT_NETWORK,	50, -1, COUNTS_WITH_SYSCALL },
	{ "socket.bind",		CAT_NETWORK,	0,  2, COUNTS_ALWAYS },
	{ "socket.sendto",		CAT_NETWORK,	10, -1, COUNTS_WITH_SYSCALL },
	{ "socket.sendmsg",		CAT_NETWORK,	10, 1, COUNTS_WITH_SYSCALL },
	{ "http.client.connect",	CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "http.client.send",		CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	{ "urllib.Request",		CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "smtplib.connect",		CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "smtplib.send",		CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	{ "ftplib.connect",		CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "ftplib.sendcmd",		CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	{ "poplib.connect",		CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "poplib.putline",		CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	{ "imaplib.open",		CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "imaplib.send",		CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	{ "nntplib.connect",		CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "nntplib.putline",		CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	{ "telnetlib.Telnet.open",	CAT_NETWORK,	50, 2, COUNTS_ALWAYS },
	{ "telnetlib.Telnet.write",	CAT_NETWORK,	50, 1, COUNTS_ALWAYS },
	/* executable (None unless given), then the command: BPF shows argv by its first item */
	{ "subprocess.Popen",		CAT_SUBPROCESS,	50, 2, COUNTS_ALWAYS },
	{ "os.system",			CAT_SUBPROCESS,	50, 1, COUNTS_ALWAYS },
	{ "os.exec",			CAT_SUBPROCESS,	50, 1, COUNTS_ALWAYS },
	{ "os.spawn",			CAT_SUBPROCESS,	50, 2, COUNTS_ALWAYS },
	{ "os.posix_spawn",		CAT_SUBPROCESS,	50, 1, COUNTS_ALWAYS },
	{ "os.fork",			CAT_SUBPROCESS,	50, 0, COUNTS_ALWAYS },
	{ "os.forkpty",			CAT_SUBPROCESS,	50, 0, COUNTS_ALWAYS },
	{ "pty.spawn",			CAT_SUBPROCESS,	50, 1, COUNTS_ALWAYS },
	{ "shutil.rmtree",		CAT_FILE,	50, 1, COUNTS_ALWAYS },
	{ "shutil.copytree",		CAT_FILE,	50, 2, COUNTS_ALWAYS },
	{ "glob.glob",			CAT_FILE,	50, 1, COUNTS_ALWAYS },
	{ "glob.glob/2",		CAT_FILE,	50, 1, COUNTS_ALWAYS },
	{ "builtins.input",		CAT_OTHER,	50, 1, COUNTS_ALWAYS },
	{ "import",			CAT_OTHER,	50, 1, COUNTS_ALWAYS },
	{ "open",			CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "tempfile.mkstemp",		CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "tempfile.mkdtemp",		CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "os.listdir",			CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "os.scandir",			CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "os.mkdir",			CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "os.rmdir",			CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "os.remove",			CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "os.rename",			CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "os.link",			CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "os.symlink",			CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "os.truncate",		CAT_FILE,	10, 1, COUNTS_ALWAYS },
	{ "shutil.copyfile",		CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "shutil.copymode",		CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "shutil.copystat",		CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "shutil.move",		CAT_FILE,	10, 2, COUNTS_ALWAYS },
	{ "sqlite3.connect",		CAT_DATABASE,	10, 1, COUNTS_ALWAYS },
	{ "os.kill",			CAT_OTHER,	1,  2, COUNTS_ALWAYS },
	{ "os.killpg",			CAT_OTHER,	1,  2, COUNTS_ALWAYS },
	{ "syslog.syslog",		CAT_OTHER,	1,  2, COUNTS_ALWAYS },
	{ "fcntl.flock",		CAT_LOCK,	1,  1, COUNTS_ALWAYS },
	{ "fcntl.lockf",		CAT_LOCK,	1,  1, COUNTS_ALWAYS },
	{ NULL, 0, 0, 0, COUNTS_ALWAYS },
};

static const char *const category_names[] = {
	[CAT_SLEEP] = "sleep", [CAT_FILE] = "file", [CAT_NETWORK] = "network",
	[CAT_DNS] = "dns", [CAT_SUBPROCESS] = "subprocess", [CAT_DATABASE] = "database",
	[CAT_LOCK] = "lock", [CAT_OTHER] = "other",
};

const char *category_name(enum category c)
{
	return (unsigned)c <= CAT_OTHER ? category_names[c] : "other";
}

const char *severity_level_name(enum severity_level l)
{
	return l == LEVEL_HIGH ? "high" : l == LEVEL_MEDIUM ? "medium" : "low";
}

const char *syscall_name(unsigned nr)
{
	const struct syscall_info *s = syscall_info(nr);

	return s ? s->name : "syscall";
}

bool path_ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static bool is_database_path(const char *path)
{
	static const char *const suffixes[] = {
		".db", ".sqlite", ".sqlite3", "-journal", "-wal", "-shm",
	};

	if (!path)
		return false;
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (path_ends_with(path, suffixes[i]))
			return true;
	return false;
}

/*
 * Database drivers, by the package directory their Python frames run in. Drivers written
 * in C (psycopg2's cursor.execute) show no frame of their own: their servers' ports say it.
 */
static const char *const database_packages[] = {
	"-packages/psycopg2/", "-packages/psycopg/", "-packages/redis/", "-packages/pymysql/",
	"-packages/MySQLdb/", "-packages/mysql/connector/", "-packages/pymongo/",
	"-packages/cassandra/", "-packages/pymssql/", "-packages/oracledb/",
	"-packages/clickhouse_driver/", "/sqlite3/",
};

static const uint16_t database_ports[] = {
	5432,	/* PostgreSQL */
	3306,	/* MySQL, MariaDB */
	6379,	/* Redis */
	27017,	/* MongoDB */
	1433,	/* SQL Server */
	1521,	/* Oracle */
	9042,	/* Cassandra */
	9000,	/* ClickHouse native */
};

bool is_database_driver_path(const char *path)
{
	if (!path)
		return false;
	for (size_t i = 0; i < sizeof(database_packages) / sizeof(database_packages[0]); i++)
		if (strstr(path, database_packages[i]))
			return true;
	return false;
}

static bool is_database_port(int port)
{
	for (size_t i = 0; i < sizeof(database_ports) / sizeof(database_ports[0]); i++)
		if (port == database_ports[i])
			return true;
	return false;
}

static const struct audit_rule *find_audit_rule(const char *name)
{
	for (const struct audit_rule *r = audit_rules; r->name; r++)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

/* Formats "ip:port" for an AF_INET/AF_INET6 sockaddr; returns the port or -1. */
static int format_sockaddr(const uint8_t *sa, size_t len, char *buf, size_t bufsz)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	uint16_t family, port;

	buf[0] = 0;
	if (!sa || len < sizeof(struct sockaddr_in))
		return -1;
	memcpy(&family, sa, sizeof(family));
	memcpy(&port, sa + 2, sizeof(port));
	port = ntohs(port);
	if (family == AF_INET) {
		inet_ntop(AF_INET, sa + 4, ip, sizeof(ip));
		snprintf(buf, bufsz, "%s:%u", ip, port);
	} else if (family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		inet_ntop(AF_INET6, sa + 8, ip, sizeof(ip));
		snprintf(buf, bufsz, "[%s]:%u", ip, port);
	} else if (family == AF_UNIX) {
		snprintf(buf, bufsz, "unix");
		return -1;
	} else {
		return -1;
	}
	return port;
}

/* Audit arguments arrive as text; floats as "float:<bits>" since BPF cannot format them. */
static const char *audit_arg(const char *text, char *buf, size_t bufsz)
{
	unsigned long long bits;
	double v;

	if (!text)
		return "";
	if (sscanf(text, "float:%llx", &bits) != 1)
		return text;
	memcpy(&v, &bits, sizeof(v));
	snprintf(buf, bufsz, "%g", v);
	return buf;
}

/*
 * A host that getaddrinfo/gethostbyname resolve without a query: an address literal, or
 * none at all (None renders as its type name, BPF names what is not a str by its type).
 */
static bool is_numeric_host(const char *host)
{
	struct in6_addr addr;

	if (!host || !host[0] || !strcmp(host, "NoneType"))
		return true;
	return inet_pton(AF_INET, host, &addr) == 1 || inet_pton(AF_INET6, host, &addr) == 1;
}

/* false when this audit event, by its arguments, performs nothing that could block. */
static bool classify_audit(const struct raw_op *r, const struct audit_rule *rule,
			   struct op_class *out)
{
	char num[32];
	size_t used;

	if (rule->condition == COUNTS_UNLESS_NUMERIC_HOST && is_numeric_host(r->arg_text[0]))
		return false;
	out->needs_syscall = rule->condition == COUNTS_WITH_SYSCALL;
	out->category = rule->category;
	out->weight = rule->weight;
	out->primary = true;
	out->syscall = NULL;
	out->wants_detail = rule->shown_args < 0;
	used = snprintf(out->name, sizeof(out->name), "%s(", rule->name);
	for (int i = 0, shown = 0; i < rule->shown_args && i < 3 && used < sizeof(out->name);
	     i++) {
		const char *a = audit_arg(r->arg_text[i], num, sizeof(num));

		if (!strcmp(a, "NoneType"))
			continue;	/* an argument left out says nothing */
		used += snprintf(out->name + used, sizeof(out->name) - used, "%s%s",
				 shown++ ? ", " : "", a);
	}
	if (used < sizeof(out->name))
		snprintf(out->name + used, sizeof(out->name) - used, ")");
	return true;
}

/*
 * Seconds a sleep asked for, from the timespec (or, for select, the timeval: units of
 * 1000 ns) copied by BPF into r->sockaddr.
 */
static double requested_sleep(const struct raw_op *r, bool absolute, int64_t ns_per_unit)
{
	int64_t ts[2];

	if (!r->sockaddr || r->sockaddr_len < sizeof(ts))
		return -1;
	memcpy(ts, r->sockaddr, sizeof(ts));
	if (ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000 / ns_per_unit)
		return -1;
	ts[1] *= ns_per_unit;
	if (absolute) {
		double deadline = ts[0] + ts[1] / 1e9, start = r->start_ns / 1e9;

		return deadline > start ? deadline - start : 0;
	}
	return ts[0] + ts[1] / 1e9;
}

static void name_sleep(const struct raw_op *r, enum syscall_kind kind, struct op_class *out)
{
	bool python_sleep = false;
	double secs = -1;

	if (kind == SYSCALL_CLOCK_SLEEP) {
		/* CPython's time.sleep waits for an absolute CLOCK_MONOTONIC deadline */
		python_sleep = r->args[0] == CLOCK_MONO && (r->args[1] & TIMER_ABSTIME);
		secs = requested_sleep(r, python_sleep, 1);
	} else if (kind == SYSCALL_SLEEP) {
		secs = requested_sleep(r, false, 1);
	} else {
		/* select() with no fds: CPython 3.10's time.sleep */
		const struct syscall_info *s = syscall_info(r->nr);

		python_sleep = true;
		if (kind == SYSCALL_SELECT && s)
			secs = requested_sleep(r, false,
					       s->props.flags & SC_OPERAND_TIMEVAL ? 1000 : 1);
	}
	if (secs < 0) {
		/* asked for unknown: a sleep only ever overshoots, so the whole milliseconds */
		secs = (double)(int64_t)(r->duration_ns / 1000000) / 1000;
	}
	/* round to the millisecond so 0.0599987 shows as the 0.06 the code asked for */
	secs = (double)(int64_t)(secs * 1000 + 0.5) / 1000;
	snprintf(out->name, sizeof(out->name), "%s(%g)", python_sleep ? "time.sleep" : "sleep",
		 secs);
}

/*
 * A socket's category: DNS to port 53, database for a driver's stack or a database
 * server's port, else network. Formats the peer ("10.0.0.5:5432") into peer, or "".
 */
static enum category socket_category(const struct raw_op *r, char *peer, size_t peersz)
{
	int port = format_sockaddr(r->peer, r->peer_len, peer, peersz);

	if (port == 53)
		return CAT_DNS;
	if (r->database_stack || is_database_port(port))
		return CAT_DATABASE;
	return CAT_NETWORK;
}

/* What a call on a file other than a socket or a disk file is: a pipe to a child, or other. */
static enum category stream_category(const struct raw_op *r)
{
	return (r->fd_mode & S_IFMT) == S_IFIFO && r->subprocess_stack ? CAT_SUBPROCESS
									 : CAT_OTHER;
}

static void classify_fd_io(const struct raw_op *r, struct op_class *out)
{
	const char *verb = out->syscall;
	uint32_t kind = r->fd_mode & S_IFMT;
	char peer[96];

	out->primary = false;
	out->weight = 10;
	if (kind == S_IFSOCK) {
		out->category = socket_category(r, peer, sizeof(peer));
		if (peer[0]) {
			snprintf(out->name, sizeof(out->name), "%s(%s)", verb, peer);
			return;
		}
	} else if (kind == S_IFREG || kind == S_IFBLK) {
		out->category = is_database_path(r->fd_path) ? CAT_DATABASE : CAT_FILE;
	} else {
		out->category = stream_category(r);
	}
	if (r->fd_path && kind != S_IFSOCK)
		snprintf(out->name, sizeof(out->name), "%s(%s)", verb, r->fd_path);
	else
		snprintf(out->name, sizeof(out->name), "%s(fd %d)", verb, (int)r->args[0]);
}

static void classify_path(const struct raw_op *r, struct op_class *out, int weight)
{
	out->category = is_database_path(r->path) ? CAT_DATABASE : CAT_FILE;
	out->weight = weight;
	snprintf(out->name, sizeof(out->name), "%s(%s)", out->syscall, r->path ? r->path : "");
}

/*
 * A poll of one fd (CPython's socket timeouts, subprocess pipes) is a wait on that fd's
 * kind: "poll(socket 10.0.0.5:5432)", "poll(pipe)"; of several, a wait for fd.
 */
static void name_wait(const struct raw_op *r, struct op_class *out)
{
	uint32_t kind = r->fd_mode & S_IFMT;
	char peer[96];

	out->category = CAT_OTHER;
	if (r->fd < 0 || !kind) {
		snprintf(out->name, sizeof(out->name), "%s(wait for fd)", out->syscall);
	} else if (kind == S_IFSOCK) {
		out->category = socket_category(r, peer, sizeof(peer));
		snprintf(out->name, sizeof(out->name), "%s(socket%s%s)", out->syscall,
			 peer[0] ? " " : "", peer);
	} else if (kind == S_IFIFO) {
		out->category = stream_category(r);
		snprintf(out->name, sizeof(out->name), "%s(pipe)", out->syscall);
	} else if (kind == S_IFREG || kind == S_IFBLK) {
		out->category = CAT_FILE;
		snprintf(out->name, sizeof(out->name), "%s(%s)", out->syscall,
			 r->fd_path ? r->fd_path : "file");
	} else {
		snprintf(out->name, sizeof(out->name), "%s(fd %d)", out->syscall, r->fd);
	}
}

/* select and poll watching no fds are sleeps; else they wait for the call around them. */
static void classify_fd_wait(const struct raw_op *r, enum syscall_kind kind,
			     struct op_class *out)
{
	uint64_t nfds = kind == SYSCALL_SELECT ? r->args[0] : r->args[1];

	if (nfds == 0) {
		out->category = CAT_SLEEP;
		out->weight = 50;
		name_sleep(r, kind, out);
		return;
	}
	out->primary = false;
	name_wait(r, out);
}

/*
 * A call on a non-blocking descriptor that came straight back (EAGAIN, EINPROGRESS) did
 * not block; one that returned them after a wait (a socket timeout) did.
 */
static bool returned_without_waiting(const struct raw_op *r)
{
	return (r->ret == -EAGAIN || r->ret == -EINPROGRESS) &&
	       r->duration_ns < AIOCOPD_SLOW_WAIT_NS;
}

/* Only the futex operations that wait are lock waits; wakes and requeues never block. */
static bool is_futex_wait(uint64_t op)
{
	switch (op & FUTEX_CMD_MASK) {
	case FUTEX_WAIT: case FUTEX_WAIT_BITSET: case FUTEX_LOCK_PI: case FUTEX_LOCK_PI2:
	case FUTEX_WAIT_REQUEUE_PI:
		return true;
	}
	return false;
}

/* false when the record is no blocking operation (a futex wake). */
static bool classify_syscall(const struct raw_op *r, struct op_class *out)
{
	const struct syscall_info *s = syscall_info(r->nr);
	enum syscall_kind kind = s ? s->kind : SYSCALL_OTHER;
	char where[96];
	int port;

	out->syscall = syscall_name(r->nr);
	out->primary = true;
	out->category = CAT_OTHER;
	out->weight = 10;
	snprintf(out->name, sizeof(out->name), "%s()", out->syscall);
	switch (kind) {
	case SYSCALL_SLEEP: case SYSCALL_CLOCK_SLEEP:
		out->category = CAT_SLEEP;
		out->weight = 50;
		name_sleep(r, kind, out);
		break;
	case SYSCALL_SELECT: case SYSCALL_POLL:
		classify_fd_wait(r, kind, out);
		break;
	case SYSCALL_OPEN:
		classify_path(r, out, 10);
		snprintf(out->name, sizeof(out->name), "open(%s)", r->path ? r->path : "");
		break;
	case SYSCALL_STAT:
		classify_path(r, out, 1);
		break;
	case SYSCALL_PATH_CHANGE:
		classify_path(r, out, 10);
		break;
	case SYSCALL_LISTDIR:
		out->category = CAT_FILE;
		snprintf(out->name, sizeof(out->name), "listdir(%s)",
			 r->fd_path ? r->fd_path : "?");
		break;
	case SYSCALL_FD_IO:
		classify_fd_io(r, out);
		break;
	case SYSCALL_SENDTO:
		classify_fd_io(r, out);
		/* an unconnected socket's destination is the call's own */
		port = format_sockaddr(r->sockaddr, r->sockaddr_len, where, sizeof(where));
		if (port == 53)
			out->category = CAT_DNS;
		if (port >= 0)
			snprintf(out->name, sizeof(out->name), "sendto(%s)", where);
		snprintf(out->detail, sizeof(out->detail), "%s", where);
		break;
	case SYSCALL_CONNECT:
		out->category = CAT_NETWORK;
		out->weight = 50;
		port = format_sockaddr(r->sockaddr, r->sockaddr_len, where, sizeof(where));
		if (port == 53)
			out->category = CAT_DNS;
		snprintf(out->name, sizeof(out->name), "connect(%s)", where[0] ? where : "?");
		snprintf(out->detail, sizeof(out->detail), "%s", where);
		break;
	case SYSCALL_ACCEPT:
		out->category = CAT_NETWORK;
		out->weight = 50;
		snprintf(out->name, sizeof(out->name), "accept(fd %d)", (int)r->args[0]);
		break;
	case SYSCALL_FORK:
		out->category = CAT_SUBPROCESS;
		out->weight = 50;
		snprintf(out->name, sizeof(out->name), "fork()");
		break;
	case SYSCALL_EXEC:
		out->category = CAT_SUBPROCESS;
		out->weight = 50;
		snprintf(out->name, sizeof(out->name), "exec(%s)", r->path ? r->path : "");
		break;
	case SYSCALL_WAIT_CHILD:
		out->category = CAT_SUBPROCESS;
		out->primary = false;
		snprintf(out->name, sizeof(out->name), "wait(pid %d)", (int)r->args[0]);
		break;
	case SYSCALL_LOCK:
		out->category = CAT_LOCK;
		out->weight = 1;
		snprintf(out->name, sizeof(out->name), "flock(%s)",
			 r->fd_path ? r->fd_path : "?");
		break;
	case SYSCALL_KILL:
		out->weight = 1;
		snprintf(out->name, sizeof(out->name), "kill(%d, %d)", (int)r->args[0],
			 (int)r->args[1]);
		break;
	case SYSCALL_FUTEX:
		/* CPython's locks (threading.Lock, queues, Future.result) wait here */
		if (!is_futex_wait(r->args[1]))
			return false;
		/* a timed acquire waits in slices: the slices of one call are one wait */
		out->primary = false;
		out->category = CAT_LOCK;
		snprintf(out->name, sizeof(out->name), "futex(threading lock)");
		break;
	case SYSCALL_OTHER: case SYSCALL_LOOP_WAIT:
		break;
	}
	return true;
}

bool classify_raw(const struct raw_op *r, struct op_class *out)
{
	memset(out, 0, sizeof(*out));
	if (r->sample)
		return false;
	if (r->audit) {
		const struct audit_rule *rule = r->name ? find_audit_rule(r->name) : NULL;

		return rule && classify_audit(r, rule, out);
	}
	if (returned_without_waiting(r))
		return false;
	return classify_syscall(r, out);
}

static bool same_site(const struct op *op, const struct raw_op *r)
{
	return r->site_code && op->site_code == r->site_code && op->site_instr == r->site_instr;
}

size_t ops_add(struct op *ops, size_t n, size_t max, const struct raw_op *r, size_t raw_index)
{
	struct op_class c;
	struct op *last = n ? &ops[n - 1] : NULL;

	if (!classify_raw(r, &c))
		return n;
	if (last && !r->audit && same_site(last, r) && (last->from_audit || !c.primary)) {
		last->duration_ns += r->duration_ns;
		last->needs_syscall = false;	/* the syscall it needed is this one */
		if (!last->syscall)
			last->syscall = c.syscall;
		if (last->wants_detail && c.detail[0]) {
			size_t open_paren = strcspn(last->name, "(");

			snprintf(last->name + open_paren, sizeof(last->name) - open_paren, "(%s)",
				 c.detail);
			last->wants_detail = false;
		}
		if (c.weight > last->weight && !last->from_audit) {
			/* the heavier syscall is what the operation is, name and all */
			last->weight = c.weight;
			last->category = c.category;
			last->syscall = c.syscall;
			memcpy(last->name, c.name, sizeof(last->name));
		}
		return n;
	}
	if (n >= max)
		return n;
	memset(&ops[n], 0, sizeof(ops[n]));
	ops[n].category = c.category;
	ops[n].weight = c.weight;
	memcpy(ops[n].name, c.name, sizeof(ops[n].name));
	ops[n].syscall = c.syscall;
	ops[n].start_ns = r->start_ns;
	ops[n].duration_ns = r->duration_ns;
	ops[n].site_code = r->site_code;
	ops[n].site_instr = r->site_instr;
	ops[n].from_audit = r->audit;
	ops[n].wants_detail = r->audit && c.wants_detail;
	ops[n].needs_syscall = c.needs_syscall;
	ops[n].first_raw = raw_index;
	return n + 1;
}

size_t ops_drop_unblocked(struct op *ops, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (ops[i].needs_syscall)
			continue;
		if (kept != i)
			ops[kept] = ops[i];
		kept++;
	}
	return kept;
}

int op_weight(const struct op *op, uint64_t threshold_ns)
{
	/* a threshold of 0 would make everything serious: it means "no duration rule" */
	if (threshold_ns && op->duration_ns >= threshold_ns && op->weight < 50)
		return 50;
	return op->weight;
}

int severity_score(const struct op *ops, size_t n, uint64_t threshold_ns)
{
	int score = 0;

	for (size_t i = 0; i < n && i < SEVERITY_MAX_EVENTS; i++)
		score += op_weight(&ops[i], threshold_ns);
	return score;
}

enum severity_level severity_level(int score)
{
	if (score >= 50)
		return LEVEL_HIGH;
	if (score >= 10)
		return LEVEL_MEDIUM;
	return LEVEL_LOW;
}

enum severity_level callback_level(int score, double elapsed_ms, double threshold_ms)
{
	enum severity_level level = severity_level(score);

	if (threshold_ms <= 0)
		return level;
	if (elapsed_ms >= 4 * threshold_ms)
		return LEVEL_HIGH;
	if (elapsed_ms >= 2 * threshold_ms && level < LEVEL_MEDIUM)
		return LEVEL_MEDIUM;
	return level;
}

bool is_stdlib_path(const char *path)
{
	const char *p;
	int minor, n = 0;

	if (!path || !*path)
		return false;
	if (strncmp(path, "<frozen ", 8) == 0)
		return true;
	/* .../lib/python3.X/... but not a site-packages or dist-packages below it */
	for (p = strstr(path, "/lib/python3."); p; p = strstr(p + 1, "/lib/python3.")) {
		if (sscanf(p, "/lib/python3.%d/%n", &minor, &n) == 1 && n > 0) {
			const char *rest = p + n;

			return strncmp(rest, "site-packages/", 14) != 0 &&
			       strncmp(rest, "dist-packages/", 14) != 0;
		}
	}
	return false;
}
