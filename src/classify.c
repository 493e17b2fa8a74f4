// SPDX-License-Identifier: GPL-2.0
/*
 * The severity model of aiocop, applied to what aiocopd sees: audit events by name, syscalls
 * by number and by the kind of file they touch. Weights: 50 for sleeps, DNS, connect/accept,
 * tree walks, network libraries, process start, input() and imports; 10 for opens, file and
 * socket I/O and anything unlisted; 1 for stat-like calls, locks, kill; 0 for bind.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "classify.h"
#include "syscall_nr.h"

#define TIMER_ABSTIME	1
#define CLOCK_MONO	1

const struct audit_rule audit_rules[] = {
	{ "time.sleep",			CAT_SLEEP,	50, 1 },
	{ "socket.getaddrinfo",		CAT_DNS,	50, 2 },
	{ "socket.gethostbyname",	CAT_DNS,	50, 1 },
	{ "socket.gethostbyaddr",	CAT_DNS,	50, 1 },
	{ "socket.getnameinfo",		CAT_DNS,	50, 1 },
	{ "socket.connect",		CAT_NETWORK,	50, -1 },
	{ "socket.bind",		CAT_NETWORK,	0,  2 },
	{ "socket.sendto",		CAT_NETWORK,	10, -1 },
	{ "socket.sendmsg",		CAT_NETWORK,	10, 1 },
	{ "http.client.connect",	CAT_NETWORK,	50, 2 },
	{ "http.client.send",		CAT_NETWORK,	50, 1 },
	{ "urllib.Request",		CAT_NETWORK,	50, 2 },
	{ "smtplib.connect",		CAT_NETWORK,	50, 2 },
	{ "smtplib.send",		CAT_NETWORK,	50, 1 },
	{ "ftplib.connect",		CAT_NETWORK,	50, 2 },
	{ "ftplib.sendcmd",		CAT_NETWORK,	50, 1 },
	{ "poplib.connect",		CAT_NETWORK,	50, 2 },
	{ "poplib.putline",		CAT_NETWORK,	50, 1 },
	{ "imaplib.open",		CAT_NETWORK,	50, 2 },
	{ "imaplib.send",		CAT_NETWORK,	50, 1 },
	{ "nntplib.connect",		CAT_NETWORK,	50, 2 },
	{ "nntplib.putline",		CAT_NETWORK,	50, 1 },
	{ "telnetlib.Telnet.open",	CAT_NETWORK,	50, 2 },
	{ "telnetlib.Telnet.write",	CAT_NETWORK,	50, 1 },
	{ "subprocess.Popen",		CAT_SUBPROCESS,	50, 1 },
	{ "os.system",			CAT_SUBPROCESS,	50, 1 },
	{ "os.exec",			CAT_SUBPROCESS,	50, 1 },
	{ "os.spawn",			CAT_SUBPROCESS,	50, 2 },
	{ "os.posix_spawn",		CAT_SUBPROCESS,	50, 1 },
	{ "os.fork",			CAT_SUBPROCESS,	50, 0 },
	{ "os.forkpty",			CAT_SUBPROCESS,	50, 0 },
	{ "pty.spawn",			CAT_SUBPROCESS,	50, 1 },
	{ "shutil.rmtree",		CAT_FILE,	50, 1 },
	{ "shutil.copytree",		CAT_FILE,	50, 2 },
	{ "glob.glob",			CAT_FILE,	50, 1 },
	{ "glob.glob/2",		CAT_FILE,	50, 1 },
	{ "builtins.input",		CAT_OTHER,	50, 1 },
	{ "import",			CAT_OTHER,	50, 1 },
	{ "open",			CAT_FILE,	10, 2 },
	{ "tempfile.mkstemp",		CAT_FILE,	10, 1 },
	{ "tempfile.mkdtemp",		CAT_FILE,	10, 1 },
	{ "os.listdir",			CAT_FILE,	10, 1 },
	{ "os.scandir",			CAT_FILE,	10, 1 },
	{ "os.mkdir",			CAT_FILE,	10, 1 },
	{ "os.rmdir",			CAT_FILE,	10, 1 },
	{ "os.remove",			CAT_FILE,	10, 1 },
	{ "os.rename",			CAT_FILE,	10, 2 },
	{ "os.link",			CAT_FILE,	10, 2 },
	{ "os.symlink",			CAT_FILE,	10, 2 },
	{ "os.truncate",		CAT_FILE,	10, 1 },
	{ "shutil.copyfile",		CAT_FILE,	10, 2 },
	{ "shutil.copymode",		CAT_FILE,	10, 2 },
	{ "shutil.copystat",		CAT_FILE,	10, 2 },
	{ "shutil.move",		CAT_FILE,	10, 2 },
	{ "sqlite3.connect",		CAT_DATABASE,	10, 1 },
	{ "os.kill",			CAT_OTHER,	1,  2 },
	{ "os.killpg",			CAT_OTHER,	1,  2 },
	{ "syslog.syslog",		CAT_OTHER,	1,  2 },
	{ "fcntl.flock",		CAT_LOCK,	1,  1 },
	{ "fcntl.lockf",		CAT_LOCK,	1,  1 },
	{ NULL, 0, 0, 0 },
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
	switch (nr) {
	case NR_read: return "read";
	case NR_write: return "write";
	case NR_open: return "open";
	case NR_stat: return "stat";
	case NR_lstat: return "lstat";
	case NR_poll: return "poll";
	case NR_pread64: return "pread64";
	case NR_pwrite64: return "pwrite64";
	case NR_readv: return "readv";
	case NR_writev: return "writev";
	case NR_access: return "access";
	case NR_select: return "select";
	case NR_nanosleep: return "nanosleep";
	case NR_sendfile: return "sendfile";
	case NR_connect: return "connect";
	case NR_accept: return "accept";
	case NR_sendto: return "sendto";
	case NR_recvfrom: return "recvfrom";
	case NR_sendmsg: return "sendmsg";
	case NR_recvmsg: return "recvmsg";
	case NR_clone: return "clone";
	case NR_fork: return "fork";
	case NR_vfork: return "vfork";
	case NR_execve: return "execve";
	case NR_wait4: return "wait4";
	case NR_kill: return "kill";
	case NR_flock: return "flock";
	case NR_fsync: return "fsync";
	case NR_fdatasync: return "fdatasync";
	case NR_truncate: return "truncate";
	case NR_ftruncate: return "ftruncate";
	case NR_rename: return "rename";
	case NR_mkdir: return "mkdir";
	case NR_rmdir: return "rmdir";
	case NR_creat: return "creat";
	case NR_link: return "link";
	case NR_unlink: return "unlink";
	case NR_symlink: return "symlink";
	case NR_readlink: return "readlink";
	case NR_statfs: return "statfs";
	case NR_getdents64: return "getdents64";
	case NR_clock_nanosleep: return "clock_nanosleep";
	case NR_waitid: return "waitid";
	case NR_openat: return "openat";
	case NR_mkdirat: return "mkdirat";
	case NR_newfstatat: return "newfstatat";
	case NR_unlinkat: return "unlinkat";
	case NR_renameat: return "renameat";
	case NR_linkat: return "linkat";
	case NR_symlinkat: return "symlinkat";
	case NR_readlinkat: return "readlinkat";
	case NR_faccessat: return "faccessat";
	case NR_pselect6: return "pselect6";
	case NR_ppoll: return "ppoll";
	case NR_accept4: return "accept4";
	case NR_preadv: return "preadv";
	case NR_pwritev: return "pwritev";
	case NR_renameat2: return "renameat2";
	case NR_execveat: return "execveat";
	case NR_copy_file_range: return "copy_file_range";
	case NR_statx: return "statx";
	case NR_clone3: return "clone3";
	case NR_openat2: return "openat2";
	case NR_faccessat2: return "faccessat2";
	}
	return "syscall";
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

static void classify_audit(const struct raw_op *r, const struct audit_rule *rule,
			   struct op_class *out)
{
	char num[32];
	size_t used;

	out->category = rule->category;
	out->weight = rule->weight;
	out->primary = true;
	out->syscall = NULL;
	out->wants_detail = rule->shown_args < 0;
	used = snprintf(out->name, sizeof(out->name), "%s(", rule->name);
	for (int i = 0; i < rule->shown_args && i < 3 && used < sizeof(out->name); i++) {
		const char *a = audit_arg(r->arg_text[i], num, sizeof(num));

		used += snprintf(out->name + used, sizeof(out->name) - used, "%s%s",
				 i ? ", " : "", a);
	}
	if (used < sizeof(out->name))
		snprintf(out->name + used, sizeof(out->name) - used, ")");
}

/* Seconds a sleep asked for, from the timespec copied by BPF (in r->sockaddr). */
static double requested_sleep(const struct raw_op *r, bool absolute)
{
	int64_t ts[2];

	if (!r->sockaddr || r->sockaddr_len < sizeof(ts))
		return -1;
	memcpy(ts, r->sockaddr, sizeof(ts));
	if (ts[0] < 0 || ts[1] < 0 || ts[1] >= 1000000000)
		return -1;
	if (absolute) {
		double deadline = ts[0] + ts[1] / 1e9, start = r->start_ns / 1e9;

		return deadline > start ? deadline - start : 0;
	}
	return ts[0] + ts[1] / 1e9;
}

static void name_sleep(const struct raw_op *r, struct op_class *out)
{
	bool python_sleep = false;
	double secs = -1;

	if (r->nr == NR_clock_nanosleep) {
		/* CPython's time.sleep waits for an absolute CLOCK_MONOTONIC deadline */
		python_sleep = r->args[0] == CLOCK_MONO && (r->args[1] & TIMER_ABSTIME);
		secs = requested_sleep(r, python_sleep);
	} else if (r->nr == NR_nanosleep) {
		secs = requested_sleep(r, false);
	} else {
		/* select() with no fds: CPython 3.10's time.sleep */
		python_sleep = true;
	}
	if (secs < 0)
		secs = r->duration_ns / 1e9;
	/* round to the millisecond so 0.0599987 shows as the 0.06 the code asked for */
	secs = (double)(int64_t)(secs * 1000 + 0.5) / 1000;
	snprintf(out->name, sizeof(out->name), "%s(%g)", python_sleep ? "time.sleep" : "sleep",
		 secs);
}

static void classify_fd_io(const struct raw_op *r, struct op_class *out)
{
	const char *verb = out->syscall;
	uint32_t kind = r->fd_mode & S_IFMT;

	out->primary = false;
	out->weight = 10;
	if (kind == S_IFSOCK) {
		out->category = CAT_NETWORK;
	} else if (kind == S_IFREG || kind == S_IFBLK) {
		out->category = is_database_path(r->fd_path) ? CAT_DATABASE : CAT_FILE;
	} else {
		out->category = CAT_OTHER;
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

static void classify_syscall(const struct raw_op *r, struct op_class *out)
{
	char where[96];
	int port;

	out->syscall = syscall_name(r->nr);
	out->primary = true;
	out->category = CAT_OTHER;
	out->weight = 10;
	snprintf(out->name, sizeof(out->name), "%s()", out->syscall);
	switch (r->nr) {
	case NR_nanosleep: case NR_clock_nanosleep:
		out->category = CAT_SLEEP;
		out->weight = 50;
		name_sleep(r, out);
		break;
	case NR_select: case NR_pselect6: case NR_poll: case NR_ppoll:
		if (r->args[0] == 0 && r->nr != NR_poll && r->nr != NR_ppoll) {
			out->category = CAT_SLEEP;
			out->weight = 50;
			name_sleep(r, out);
		} else if ((r->nr == NR_poll || r->nr == NR_ppoll) && r->args[1] == 0) {
			out->category = CAT_SLEEP;
			out->weight = 50;
			name_sleep(r, out);
		} else {
			out->primary = false;	/* waiting on an fd: part of the call around it */
			snprintf(out->name, sizeof(out->name), "%s(wait for fd)", out->syscall);
		}
		break;
	case NR_open: case NR_openat: case NR_openat2: case NR_creat:
		classify_path(r, out, 10);
		snprintf(out->name, sizeof(out->name), "open(%s)", r->path ? r->path : "");
		break;
	case NR_stat: case NR_lstat: case NR_newfstatat: case NR_statx: case NR_access:
	case NR_faccessat: case NR_faccessat2: case NR_readlink: case NR_readlinkat:
	case NR_statfs:
		classify_path(r, out, 1);
		break;
	case NR_mkdir: case NR_mkdirat: case NR_rmdir: case NR_unlink: case NR_unlinkat:
	case NR_rename: case NR_renameat: case NR_renameat2: case NR_link: case NR_linkat:
	case NR_symlink: case NR_symlinkat: case NR_truncate:
		classify_path(r, out, 10);
		break;
	case NR_getdents64:
		out->category = CAT_FILE;
		snprintf(out->name, sizeof(out->name), "listdir(%s)",
			 r->fd_path ? r->fd_path : "?");
		break;
	case NR_read: case NR_write: case NR_pread64: case NR_pwrite64: case NR_readv:
	case NR_writev: case NR_preadv: case NR_pwritev: case NR_fsync: case NR_fdatasync:
	case NR_ftruncate: case NR_sendfile: case NR_copy_file_range: case NR_recvfrom:
	case NR_recvmsg: case NR_sendmsg:
		classify_fd_io(r, out);
		break;
	case NR_sendto:
		classify_fd_io(r, out);
		if (format_sockaddr(r->sockaddr, r->sockaddr_len, where, sizeof(where)) == 53)
			out->category = CAT_DNS;
		snprintf(out->detail, sizeof(out->detail), "%s", where);
		break;
	case NR_connect:
		out->category = CAT_NETWORK;
		out->weight = 50;
		port = format_sockaddr(r->sockaddr, r->sockaddr_len, where, sizeof(where));
		if (port == 53)
			out->category = CAT_DNS;
		snprintf(out->name, sizeof(out->name), "connect(%s)", where[0] ? where : "?");
		snprintf(out->detail, sizeof(out->detail), "%s", where);
		break;
	case NR_accept: case NR_accept4:
		out->category = CAT_NETWORK;
		out->weight = 50;
		snprintf(out->name, sizeof(out->name), "accept(fd %d)", (int)r->args[0]);
		break;
	case NR_clone: case NR_clone3: case NR_fork: case NR_vfork:
		out->category = CAT_SUBPROCESS;
		out->weight = 50;
		snprintf(out->name, sizeof(out->name), "fork()");
		break;
	case NR_execve: case NR_execveat:
		out->category = CAT_SUBPROCESS;
		out->weight = 50;
		snprintf(out->name, sizeof(out->name), "exec(%s)", r->path ? r->path : "");
		break;
	case NR_wait4: case NR_waitid:
		out->category = CAT_SUBPROCESS;
		out->primary = false;
		snprintf(out->name, sizeof(out->name), "wait(pid %d)", (int)r->args[0]);
		break;
	case NR_flock:
		out->category = CAT_LOCK;
		out->weight = 1;
		snprintf(out->name, sizeof(out->name), "flock(%s)",
			 r->fd_path ? r->fd_path : "?");
		break;
	case NR_kill:
		out->weight = 1;
		snprintf(out->name, sizeof(out->name), "kill(%d, %d)", (int)r->args[0],
			 (int)r->args[1]);
		break;
	}
}

bool classify_raw(const struct raw_op *r, struct op_class *out)
{
	memset(out, 0, sizeof(*out));
	if (r->sample)
		return false;
	if (r->audit) {
		const struct audit_rule *rule = r->name ? find_audit_rule(r->name) : NULL;

		if (!rule)
			return false;
		classify_audit(r, rule, out);
		return true;
	}
	classify_syscall(r, out);
	return true;
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
	ops[n].first_raw = raw_index;
	return n + 1;
}

int severity_score(const struct op *ops, size_t n)
{
	int score = 0;

	for (size_t i = 0; i < n && i < SEVERITY_MAX_EVENTS; i++)
		score += ops[i].weight;
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
