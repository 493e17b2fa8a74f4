/*
 * test_classify.c - unit tests for src/classify.c.
 *
 * Expected categories, weights and levels come from SPEC section 4 (the aiocop severity
 * model), written out here by hand; they are never read back from the code under test
 * (audit_rules[] is not consulted). Records are built the way src/reconstruct.c builds them:
 * audit records carry duration 0 and their rendered arguments, syscall records carry the
 * syscall arguments, the fd's file type, and the timespec / sockaddr copied by BPF in
 * raw_op.sockaddr.
 */
#include <arpa/inet.h>
#include <asm/unistd.h>
#include <errno.h>
#include <linux/futex.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <cmocka.h>

#include "classify.h"
#include "syscall_table.h"

#define MS		1000000ULL
#define MONO_START	(4242ULL * 1000000000ULL + 123456789ULL)	/* a CLOCK_MONOTONIC time */

/* ---- record builders ------------------------------------------------------------------- */

static struct raw_op audit_rec(const char *name, const char *a0, const char *a1, const char *a2)
{
	struct raw_op r;

	memset(&r, 0, sizeof(r));
	r.audit = true;
	r.name = name;
	r.arg_text[0] = a0 ? a0 : "";
	r.arg_text[1] = a1 ? a1 : "";
	r.arg_text[2] = a2 ? a2 : "";
	r.start_ns = MONO_START;
	return r;
}

static struct raw_op sys_rec(unsigned nr)
{
	struct raw_op r;

	memset(&r, 0, sizeof(r));
	r.nr = nr;
	r.start_ns = MONO_START;
	r.duration_ns = 1 * MS;
	return r;
}

static struct raw_op at_site(struct raw_op r, uint64_t code, uint64_t instr)
{
	r.site_code = code;
	r.site_instr = instr;
	return r;
}

static void sockaddr_v4(struct sockaddr_in *sa, const char *ip, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sa->sin_addr), 1);
}

/* Checks one classification; on failure names the case, since table tests loop. */
#define expect_class(what, out, cat, w) do {						\
	if ((out).category != (cat) || (out).weight != (w))				\
		fail_msg("%s: category %s weight %d, want %s weight %d", (what),	\
			 category_name((out).category), (out).weight,			\
			 category_name(cat), (w));					\
} while (0)

/* ---- audit events ---------------------------------------------------------------------- */

struct audit_case {
	const char *name;
	const char *args[3];
	enum category category;
	int weight;
	const char *shown;		/* expected operation name, NULL: not checked */
};

static const struct audit_case audit_cases[] = {
	{ "time.sleep", { "0.06" }, CAT_SLEEP, 50, "time.sleep(0.06)" },
	{ "socket.getaddrinfo", { "example.com", "443", "0" }, CAT_DNS, 50,
	  "socket.getaddrinfo(example.com, 443)" },
	{ "socket.gethostbyname", { "example.com" }, CAT_DNS, 50, NULL },
	/* the address comes from the connect syscall it merges with */
	{ "socket.connect", { "socket", "tuple" }, CAT_NETWORK, 50, "socket.connect()" },
	/* BPF renders a list, like a tuple, as its first item; None as its type name */
	{ "subprocess.Popen", { "/bin/true", "true" }, CAT_SUBPROCESS, 50,
	  "subprocess.Popen(/bin/true, true)" },
	{ "subprocess.Popen", { "NoneType", "ls" }, CAT_SUBPROCESS, 50, "subprocess.Popen(ls)" },
	{ "socket.gethostbyname", { "api.example.com" }, CAT_DNS, 50,
	  "socket.gethostbyname(api.example.com)" },
	{ "os.system", { "ls" }, CAT_SUBPROCESS, 50, NULL },
	{ "import", { "json" }, CAT_OTHER, 50, "import(json)" },
	{ "builtins.input", { "> " }, CAT_OTHER, 50, NULL },
	{ "shutil.rmtree", { "/tmp/x" }, CAT_FILE, 50, NULL },
	{ "open", { "/srv/data.txt", "r", "524288" }, CAT_FILE, 10, "open(/srv/data.txt, r)" },
	{ "os.listdir", { "/srv" }, CAT_FILE, 10, NULL },
	{ "os.remove", { "/srv/x" }, CAT_FILE, 10, NULL },
	{ "sqlite3.connect", { "app.db" }, CAT_DATABASE, 10, "sqlite3.connect(app.db)" },
	{ "os.kill", { "4242", "15" }, CAT_OTHER, 1, "os.kill(4242, 15)" },
	{ "fcntl.flock", { "3" }, CAT_LOCK, 1, NULL },
	{ "socket.bind", { "<socket>", "('0.0.0.0', 8080)" }, CAT_NETWORK, 0, NULL },
};

static void test_audit_weights(void **state)
{
	for (size_t i = 0; i < sizeof(audit_cases) / sizeof(audit_cases[0]); i++) {
		const struct audit_case *c = &audit_cases[i];
		struct raw_op r = audit_rec(c->name, c->args[0], c->args[1], c->args[2]);
		struct op_class out;

		if (!classify_raw(&r, &out))
			fail_msg("audit %s ignored", c->name);
		expect_class(c->name, out, c->category, c->weight);
		assert_true(out.primary);
		assert_null(out.syscall);
		if (c->shown)
			assert_string_equal(out.name, c->shown);
	}
}

static void test_audit_unknown_ignored(void **state)
{
	static const char *const ignored[] = {
		"compile", "exec", "object.__getattr__", "sys._getframe", "os.getcwd_", "",
		"time.sleep.extra", "Open", "sqlite3.connect/handle",
	};
	struct op_class out;
	struct raw_op r;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		r = audit_rec(ignored[i], "x", NULL, NULL);
		if (classify_raw(&r, &out))
			fail_msg("audit '%s' classified, should be ignored", ignored[i]);
	}
	r = audit_rec(NULL, NULL, NULL, NULL);
	assert_false(classify_raw(&r, &out));
}

static void test_audit_long_args_bounded(void **state)
{
	char big[1000];
	struct raw_op r;
	struct op_class out;

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	r = audit_rec("socket.getaddrinfo", big, big, big);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.weight, 50);
	assert_true(strlen(out.name) < OP_NAME_LEN);
	assert_memory_equal(out.name, "socket.getaddrinfo(aaa", 22);
}

/* ---- syscalls: sleeps ------------------------------------------------------------------ */

static void test_clock_nanosleep_python_sleep(void **state)
{
	/* CPython's time.sleep(0.06): clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, now+60ms) */
	uint64_t deadline = MONO_START + 60 * MS;
	int64_t ts[2] = { (int64_t)(deadline / 1000000000ULL), (int64_t)(deadline % 1000000000ULL) };
	struct raw_op r = sys_rec(__NR_clock_nanosleep);
	struct op_class out;

	r.args[0] = 1;		/* CLOCK_MONOTONIC */
	r.args[1] = 1;		/* TIMER_ABSTIME */
	r.sockaddr = (const uint8_t *)ts;
	r.sockaddr_len = sizeof(ts);
	r.duration_ns = 60 * MS + 87654;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_SLEEP);
	assert_int_equal(out.weight, 50);
	assert_true(out.primary);
	assert_string_equal(out.syscall, "clock_nanosleep");
	assert_string_equal(out.name, "time.sleep(0.06)");
}

static void test_clock_nanosleep_abs_without_timespec(void **state)
{
	/* no timespec copied: the requested time falls back to the measured duration */
	struct raw_op r = sys_rec(__NR_clock_nanosleep);
	struct op_class out;

	r.args[0] = 1;
	r.args[1] = 1;
	r.duration_ns = 250 * MS + 300000;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_SLEEP);
	assert_int_equal(out.weight, 50);
	assert_string_equal(out.name, "time.sleep(0.25)");
}

static void test_clock_nanosleep_relative(void **state)
{
	int64_t ts[2] = { 0, 50 * 1000000 };
	struct raw_op r = sys_rec(__NR_clock_nanosleep);
	struct op_class out;

	r.args[0] = 0;		/* CLOCK_REALTIME */
	r.args[1] = 0;		/* relative */
	r.sockaddr = (const uint8_t *)ts;
	r.sockaddr_len = sizeof(ts);
	r.duration_ns = 50 * MS + 61000;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_SLEEP);
	assert_int_equal(out.weight, 50);
	assert_string_equal(out.syscall, "clock_nanosleep");
	assert_string_equal(out.name, "sleep(0.05)");
}

static void test_nanosleep(void **state)
{
	int64_t ts[2] = { 1, 500 * 1000000 };
	struct raw_op r = sys_rec(__NR_nanosleep);
	struct op_class out;

	r.sockaddr = (const uint8_t *)ts;
	r.sockaddr_len = sizeof(ts);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_SLEEP);
	assert_int_equal(out.weight, 50);
	assert_string_equal(out.name, "sleep(1.5)");
}

/* CPython 3.10's time.sleep(0.06): select(0, NULL, NULL, NULL, &timeval), late under load */
static void test_select_sleep_names_its_timeval(void **state)
{
	int64_t tv[2] = { 0, 59990 };	/* 59.99 ms left when select started */
	struct raw_op r = sys_rec(__NR_select);
	struct op_class out;

	r.args[0] = 0;
	r.duration_ns = 62 * 1000000;	/* it woke 2 ms late */
	r.sockaddr = (const uint8_t *)tv;
	r.sockaddr_len = sizeof(tv);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_SLEEP);
	assert_string_equal(out.name, "time.sleep(0.06)");
}

/* glibc makes that select a pselect6, whose timeout is a timespec */
static void test_pselect6_sleep_names_its_timespec(void **state)
{
	int64_t ts[2] = { 0, 59990000 };
	struct raw_op r = sys_rec(__NR_pselect6);
	struct op_class out;

	r.args[0] = 0;
	r.duration_ns = 63 * 1000000;
	r.sockaddr = (const uint8_t *)ts;
	r.sockaddr_len = sizeof(ts);
	assert_true(classify_raw(&r, &out));
	assert_string_equal(out.name, "time.sleep(0.06)");
}

/* With the timeout unknown (counted down by the kernel), a sleep that overshot keeps its ms. */
static void test_select_sleep_without_timeout_rounds_down(void **state)
{
	struct raw_op r = sys_rec(__NR_pselect6);
	struct op_class out;

	r.args[0] = 0;
	r.duration_ns = 60837000;
	assert_true(classify_raw(&r, &out));
	assert_string_equal(out.name, "time.sleep(0.06)");
}

/* ---- syscalls: files ------------------------------------------------------------------- */

static void test_openat_file(void **state)
{
	struct raw_op r = sys_rec(__NR_openat);
	struct op_class out;

	r.path = "/srv/data/config.json";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_FILE);
	assert_int_equal(out.weight, 10);
	assert_true(out.primary);
	assert_string_equal(out.syscall, "openat");
	assert_string_equal(out.name, "open(/srv/data/config.json)");
}

static void test_database_paths(void **state)
{
	static const char *const db[] = {
		"/srv/app.db", "/srv/app.db-journal", "/srv/app.sqlite3", "/srv/app.db-wal",
	};
	struct op_class out;
	struct raw_op r;

	for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++) {
		r = sys_rec(__NR_openat);
		r.path = db[i];
		assert_true(classify_raw(&r, &out));
		expect_class(db[i], out, CAT_DATABASE, 10);
	}
	/* a name that merely contains ".db" is an ordinary file */
	r = sys_rec(__NR_openat);
	r.path = "/srv/app.db.bak";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_FILE);

	/* database file I/O through an fd */
	r = sys_rec(__NR_pwrite64);
	r.fd_mode = S_IFREG | 0644;
	r.fd_path = "/srv/app.db-journal";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_DATABASE);
	assert_int_equal(out.weight, 10);
}

static void test_stat_like_weight_1(void **state)
{
	static const unsigned nrs[] = { __NR_newfstatat, __NR_stat, __NR_lstat, __NR_statx,
					__NR_access, __NR_faccessat, __NR_readlink, __NR_statfs };
	struct op_class out;

	for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
		struct raw_op r = sys_rec(nrs[i]);

		r.path = "/srv/x";
		assert_true(classify_raw(&r, &out));
		expect_class(syscall_name(nrs[i]), out, CAT_FILE, 1);
	}
}

static void test_file_mutations_weight_10(void **state)
{
	static const unsigned nrs[] = { __NR_mkdir, __NR_mkdirat, __NR_rmdir, __NR_unlink,
					__NR_unlinkat, __NR_rename, __NR_renameat2, __NR_link,
					__NR_symlink, __NR_truncate };
	struct op_class out;

	for (size_t i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
		struct raw_op r = sys_rec(nrs[i]);

		r.path = "/srv/x";
		assert_true(classify_raw(&r, &out));
		expect_class(syscall_name(nrs[i]), out, CAT_FILE, 10);
	}
}

static void test_read_regular_file(void **state)
{
	struct raw_op r = sys_rec(__NR_read);
	struct op_class out;

	r.args[0] = 7;
	r.fd_mode = S_IFREG | 0644;
	r.fd_path = "/srv/data.txt";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_FILE);
	assert_int_equal(out.weight, 10);
	assert_false(out.primary);
	assert_string_equal(out.syscall, "read");
	assert_string_equal(out.name, "read(/srv/data.txt)");
}

static void test_read_socket(void **state)
{
	struct raw_op r = sys_rec(__NR_read);
	struct op_class out;

	r.args[0] = 9;
	r.fd_mode = S_IFSOCK | 0777;
	r.fd_path = "socket:[123456]";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
	assert_int_equal(out.weight, 10);
	assert_false(out.primary);
	assert_string_equal(out.name, "read(fd 9)");

	r = sys_rec(__NR_recvfrom);
	r.fd_mode = S_IFSOCK;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
	assert_int_equal(out.weight, 10);
}

/* ---- syscalls: network ----------------------------------------------------------------- */

static void test_connect_network(void **state)
{
	struct sockaddr_in sa;
	struct raw_op r = sys_rec(__NR_connect);
	struct op_class out;

	sockaddr_v4(&sa, "93.184.216.34", 443);
	r.sockaddr = (const uint8_t *)&sa;
	r.sockaddr_len = sizeof(sa);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
	assert_int_equal(out.weight, 50);
	assert_true(out.primary);
	assert_string_equal(out.syscall, "connect");
	assert_string_equal(out.name, "connect(93.184.216.34:443)");
}

static void test_connect_port_53_is_dns(void **state)
{
	struct sockaddr_in sa;
	struct sockaddr_in6 sa6;
	struct raw_op r = sys_rec(__NR_connect);
	struct op_class out;

	sockaddr_v4(&sa, "127.0.0.53", 53);
	r.sockaddr = (const uint8_t *)&sa;
	r.sockaddr_len = sizeof(sa);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_DNS);
	assert_int_equal(out.weight, 50);
	assert_string_equal(out.name, "connect(127.0.0.53:53)");

	memset(&sa6, 0, sizeof(sa6));
	sa6.sin6_family = AF_INET6;
	sa6.sin6_port = htons(53);
	assert_int_equal(inet_pton(AF_INET6, "2001:4860:4860::8888", &sa6.sin6_addr), 1);
	r = sys_rec(__NR_connect);
	r.sockaddr = (const uint8_t *)&sa6;
	r.sockaddr_len = sizeof(sa6);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_DNS);
	assert_int_equal(out.weight, 50);
	assert_string_equal(out.name, "connect([2001:4860:4860::8888]:53)");

	/* port 5353 (mDNS) and 530 are not 53 */
	sockaddr_v4(&sa, "10.0.0.1", 5353);
	r = sys_rec(__NR_connect);
	r.sockaddr = (const uint8_t *)&sa;
	r.sockaddr_len = sizeof(sa);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
}

static void test_connect_without_address(void **state)
{
	struct sockaddr_in sa;
	struct raw_op r = sys_rec(__NR_connect);
	struct op_class out;

	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
	assert_int_equal(out.weight, 50);
	assert_string_equal(out.name, "connect(?)");

	/* truncated copy of a port-53 address: not trusted */
	sockaddr_v4(&sa, "127.0.0.53", 53);
	r.sockaddr = (const uint8_t *)&sa;
	r.sockaddr_len = 4;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
	assert_int_equal(out.weight, 50);
}

static void test_sendto_port_53_is_dns(void **state)
{
	struct sockaddr_in sa;
	struct raw_op r = sys_rec(__NR_sendto);
	struct op_class out;

	sockaddr_v4(&sa, "8.8.8.8", 53);
	r.fd_mode = S_IFSOCK;
	r.sockaddr = (const uint8_t *)&sa;
	r.sockaddr_len = sizeof(sa);
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_DNS);
	assert_int_equal(out.weight, 10);
}

static void test_accept(void **state)
{
	struct raw_op r = sys_rec(__NR_accept4);
	struct op_class out;

	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_NETWORK);
	assert_int_equal(out.weight, 50);
}

/* ---- syscalls: processes, locks, the rest ---------------------------------------------- */

static void test_processes(void **state)
{
	static const unsigned start[] = { __NR_clone, __NR_clone3, __NR_fork, __NR_vfork,
					  __NR_execve };
	struct op_class out;
	struct raw_op r;

	for (size_t i = 0; i < sizeof(start) / sizeof(start[0]); i++) {
		r = sys_rec(start[i]);
		assert_true(classify_raw(&r, &out));
		expect_class(syscall_name(start[i]), out, CAT_SUBPROCESS, 50);
		assert_true(out.primary);
	}
	r = sys_rec(__NR_wait4);
	r.args[0] = 4343;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_SUBPROCESS);
	assert_false(out.primary);
	assert_string_equal(out.syscall, "wait4");
	assert_string_equal(out.name, "wait(pid 4343)");
}

static void test_flock_and_kill(void **state)
{
	struct raw_op r = sys_rec(__NR_flock);
	struct op_class out;

	r.fd_mode = S_IFREG;
	r.fd_path = "/run/app.lock";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_LOCK);
	assert_int_equal(out.weight, 1);
	assert_string_equal(out.name, "flock(/run/app.lock)");

	r = sys_rec(__NR_kill);
	r.args[0] = 4242;
	r.args[1] = 15;
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.weight, 1);
	assert_string_equal(out.name, "kill(4242, 15)");
}

static void test_unlisted_syscall_weight_10(void **state)
{
	struct raw_op r = sys_rec(999);
	struct op_class out;

	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_OTHER);
	assert_int_equal(out.weight, 10);
	assert_true(out.primary);

	r = sys_rec(__NR_fsync);
	r.fd_mode = S_IFREG;
	r.fd_path = "/srv/data.txt";
	assert_true(classify_raw(&r, &out));
	assert_int_equal(out.category, CAT_FILE);
	assert_int_equal(out.weight, 10);
}

/* ---- names ----------------------------------------------------------------------------- */

static void test_names(void **state)
{
	assert_string_equal(category_name(CAT_SLEEP), "sleep");
	assert_string_equal(category_name(CAT_FILE), "file");
	assert_string_equal(category_name(CAT_NETWORK), "network");
	assert_string_equal(category_name(CAT_DNS), "dns");
	assert_string_equal(category_name(CAT_SUBPROCESS), "subprocess");
	assert_string_equal(category_name(CAT_DATABASE), "database");
	assert_string_equal(category_name(CAT_LOCK), "lock");
	assert_string_equal(category_name(CAT_OTHER), "other");
	assert_string_equal(category_name((enum category)77), "other");
	assert_string_equal(severity_level_name(LEVEL_LOW), "low");
	assert_string_equal(severity_level_name(LEVEL_MEDIUM), "medium");
	assert_string_equal(severity_level_name(LEVEL_HIGH), "high");
	assert_string_equal(syscall_name(__NR_clock_nanosleep), "clock_nanosleep");
	assert_string_equal(syscall_name(__NR_openat), "openat");
	assert_string_equal(syscall_name(__NR_newfstatat), "newfstatat");
}

/* ---- the syscall table ----------------------------------------------------------------- */

static void test_table_is_consistent(void **state)
{
	for (size_t i = 0; i < syscall_table_len; i++) {
		const struct syscall_info *s = &syscall_table[i];
		const struct syscall_props *p = &s->props;

		if (s->nr >= AIOCOPD_SYSCALL_SLOTS)
			fail_msg("%s: number %u past the BPF map", s->name, s->nr);
		if (syscall_info(s->nr) != s)
			fail_msg("%s: number %u listed twice", s->name, s->nr);
		for (size_t j = 0; j < i; j++)
			if (strcmp(syscall_table[j].name, s->name) == 0)
				fail_msg("%s listed twice", s->name);
		if (p->fd_arg > 6 || p->path_arg > 6 || p->operand_arg > 6 || p->skip_arg > 6)
			fail_msg("%s: an argument number past 6", s->name);
		if (!p->skip_arg != !p->skip_mask)
			fail_msg("%s: a skip argument needs a mask and the mask one", s->name);
		if ((p->flags & (SC_SKIP_ZERO | SC_SKIP_INDIRECT)) && !p->skip_arg)
			fail_msg("%s: skip flags without a skip argument", s->name);
		if (s->kind == SYSCALL_LOOP_WAIT && (p->flags || p->fd_arg || p->path_arg))
			fail_msg("%s: the loop's wait is never a record", s->name);
	}
	assert_null(syscall_info(999));
	assert_null(syscall_info(__NR_getppid));	/* cannot block */
}

/* Written from the syscalls' signatures, not read back from the table. */
static const struct {
	unsigned nr;
	const char *name, *event;
	unsigned fd_arg, path_arg, operand_arg, skip_arg;
} table_cases[] = {
	{ __NR_read, "read", "read", 1, 0, 0, 0 },
	{ __NR_sendfile, "sendfile", "sendfile64", 2, 0, 0, 0 },	/* in_fd decides */
	{ __NR_stat, "stat", "newstat", 0, 1, 0, 0 },
	{ __NR_lstat, "lstat", "newlstat", 0, 1, 0, 0 },
	{ __NR_openat, "openat", "openat", 0, 2, 0, 0 },
	{ __NR_symlink, "symlink", "symlink", 0, 2, 0, 0 },	/* linkpath */
	{ __NR_symlinkat, "symlinkat", "symlinkat", 0, 3, 0, 0 },
	{ __NR_newfstatat, "newfstatat", "newfstatat", 0, 2, 0, 4 },	/* flags */
	{ __NR_statx, "statx", "statx", 0, 2, 0, 3 },
	{ __NR_connect, "connect", "connect", 1, 0, 2, 0 },	/* the sockaddr */
	{ __NR_sendto, "sendto", "sendto", 1, 0, 5, 4 },
	{ __NR_recvmsg, "recvmsg", "recvmsg", 1, 0, 0, 3 },
	{ __NR_nanosleep, "nanosleep", "nanosleep", 0, 0, 1, 0 },	/* the timespec */
	{ __NR_clock_nanosleep, "clock_nanosleep", "clock_nanosleep", 0, 0, 3, 0 },
	{ __NR_poll, "poll", "poll", 0, 0, 0, 3 },	/* the timeout */
	{ __NR_select, "select", "select", 0, 0, 5, 0 },	/* the timeval */
	{ __NR_clone, "clone", "clone", 0, 0, 0, 1 },
	{ __NR_clone3, "clone3", "clone3", 0, 0, 0, 1 },
	{ __NR_epoll_pwait, "epoll_pwait", "epoll_pwait", 0, 0, 0, 0 },
};

static void test_table_arguments(void **state)
{
	for (size_t i = 0; i < sizeof(table_cases) / sizeof(table_cases[0]); i++) {
		const struct syscall_info *s = syscall_info(table_cases[i].nr);

		if (!s)
			fail_msg("%s is not traced", table_cases[i].name);
		assert_string_equal(s->name, table_cases[i].name);
		assert_string_equal(syscall_name(s->nr), table_cases[i].name);
		assert_string_equal(syscall_event(s), table_cases[i].event);
		if (s->props.fd_arg != table_cases[i].fd_arg ||
		    s->props.path_arg != table_cases[i].path_arg ||
		    s->props.operand_arg != table_cases[i].operand_arg ||
		    s->props.skip_arg != table_cases[i].skip_arg)
			fail_msg("%s: fd %u path %u operand %u skip %u", s->name, s->props.fd_arg,
				 s->props.path_arg, s->props.operand_arg, s->props.skip_arg);
	}
}

static void test_table_skip_rules(void **state)
{
	assert_int_equal(syscall_info(__NR_recvfrom)->props.skip_mask, MSG_DONTWAIT);
	assert_int_equal(syscall_info(__NR_statx)->props.skip_mask, AT_EMPTY_PATH);
	assert_int_equal(syscall_info(__NR_clone)->props.skip_mask, CLONE_THREAD);
	/* clone3's flags are behind a pointer, poll's rule is "timeout 0" */
	assert_true(syscall_info(__NR_clone3)->props.flags & SC_SKIP_INDIRECT);
	assert_true(syscall_info(__NR_poll)->props.flags & SC_SKIP_ZERO);
	/* poll and select waiting on fds count only when they waited long */
	assert_true(syscall_info(__NR_ppoll)->props.flags & SC_FD_WAIT);
	assert_true(syscall_info(__NR_pselect6)->props.flags & SC_FD_WAIT);
	assert_false(syscall_info(__NR_read)->props.flags & SC_FD_WAIT);
	assert_int_equal(syscall_info(__NR_epoll_wait)->kind, SYSCALL_LOOP_WAIT);
	assert_int_equal(syscall_info(__NR_epoll_pwait2)->kind, SYSCALL_LOOP_WAIT);
}

/* ---- severity -------------------------------------------------------------------------- */

static void test_levels(void **state)
{
	assert_int_equal(severity_level(0), LEVEL_LOW);
	assert_int_equal(severity_level(1), LEVEL_LOW);
	assert_int_equal(severity_level(9), LEVEL_LOW);
	assert_int_equal(severity_level(10), LEVEL_MEDIUM);
	assert_int_equal(severity_level(11), LEVEL_MEDIUM);
	assert_int_equal(severity_level(49), LEVEL_MEDIUM);
	assert_int_equal(severity_level(50), LEVEL_HIGH);
	assert_int_equal(severity_level(51), LEVEL_HIGH);
	assert_int_equal(severity_level(2500), LEVEL_HIGH);
}

static void fill_ops(struct op *ops, size_t n, int weight)
{
	memset(ops, 0, n * sizeof(*ops));
	for (size_t i = 0; i < n; i++)
		ops[i].weight = weight;
}

static void test_score_caps_at_50_events(void **state)
{
	struct op ops[64];

	fill_ops(ops, 64, 10);
	assert_int_equal(severity_score(ops, 0, 0), 0);
	fill_ops(ops, 60, 10);
	assert_int_equal(severity_score(ops, 1, 0), 10);
	assert_int_equal(severity_score(ops, 49, 0), 490);
	assert_int_equal(severity_score(ops, 50, 0), 500);
	assert_int_equal(severity_score(ops, 51, 0), 500);
	assert_int_equal(severity_score(ops, 60, 0), 500);
	fill_ops(ops, 60, 0);
	assert_int_equal(severity_score(ops, 60, 0), 0);
	fill_ops(ops, 3, 1);
	ops[1].weight = 50;
	assert_int_equal(severity_score(ops, 3, 0), 52);
	assert_int_equal(severity_level(severity_score(ops, 3, 0)), LEVEL_HIGH);
}

static void test_score_through_ops_add(void **state)
{
	/* 60 separate opens at 60 call sites: 60 operations, 50 of them counted */
	struct op ops[64];
	size_t n = 0;

	for (size_t i = 0; i < 60; i++) {
		struct raw_op r = at_site(sys_rec(__NR_openat), 0x1000 + i, 0x10);

		r.path = "/srv/x";
		n = ops_add(ops, n, 64, &r, i);
	}
	assert_int_equal(n, 60);
	assert_int_equal(severity_score(ops, n, 0), 500);
	assert_int_equal(severity_level(severity_score(ops, n, 0)), LEVEL_HIGH);
}

/* ---- merging --------------------------------------------------------------------------- */

static void test_merge_audit_then_syscall(void **state)
{
	struct op ops[8];
	struct raw_op a = at_site(audit_rec("open", "/srv/data.txt", "r", "524288"), 0xc0de, 0x42);
	struct raw_op s = at_site(sys_rec(__NR_openat), 0xc0de, 0x42);
	size_t n;

	s.path = "/srv/data.txt";
	s.duration_ns = 2 * MS + 345;
	n = ops_add(ops, 0, 8, &a, 0);
	assert_int_equal(n, 1);
	n = ops_add(ops, n, 8, &s, 1);
	assert_int_equal(n, 1);
	assert_string_equal(ops[0].name, "open(/srv/data.txt, r)");
	assert_int_equal(ops[0].category, CAT_FILE);
	assert_int_equal(ops[0].weight, 10);
	assert_int_equal(ops[0].duration_ns, 2 * MS + 345);
	assert_non_null(ops[0].syscall);
	assert_string_equal(ops[0].syscall, "openat");
	assert_true(ops[0].from_audit);
	assert_int_equal(ops[0].first_raw, 0);
	assert_int_equal(severity_score(ops, n, 0), 10);
}

static void test_merge_socket_connect_takes_address(void **state)
{
	struct op ops[8];
	struct raw_op a = at_site(audit_rec("socket.connect", "socket", "tuple", NULL), 0xc0de, 0x42);
	struct raw_op s = at_site(sys_rec(__NR_connect), 0xc0de, 0x42);
	struct sockaddr_in sa;
	size_t n;

	sockaddr_v4(&sa, "10.0.0.1", 80);
	s.sockaddr = (const uint8_t *)&sa;
	s.sockaddr_len = sizeof(sa);
	s.duration_ns = 3 * MS;
	n = ops_add(ops, 0, 8, &a, 0);
	n = ops_add(ops, n, 8, &s, 1);
	assert_int_equal(n, 1);
	assert_string_equal(ops[0].name, "socket.connect(10.0.0.1:80)");
	assert_int_equal(ops[0].category, CAT_NETWORK);
	assert_int_equal(ops[0].weight, 50);
	assert_string_equal(ops[0].syscall, "connect");
	assert_int_equal(ops[0].duration_ns, 3 * MS);
}

static void test_merge_audit_sleep_keeps_audit_name(void **state)
{
	uint64_t deadline = MONO_START + 60 * MS;
	int64_t ts[2] = { (int64_t)(deadline / 1000000000ULL), (int64_t)(deadline % 1000000000ULL) };
	struct op ops[8];
	struct raw_op a = at_site(audit_rec("time.sleep", "0.06", NULL, NULL), 0xc0de, 0x42);
	struct raw_op s = at_site(sys_rec(__NR_clock_nanosleep), 0xc0de, 0x42);
	size_t n;

	s.args[0] = 1;
	s.args[1] = 1;
	s.sockaddr = (const uint8_t *)ts;
	s.sockaddr_len = sizeof(ts);
	s.duration_ns = 60 * MS + 100000;
	n = ops_add(ops, 0, 8, &a, 0);
	n = ops_add(ops, n, 8, &s, 1);
	assert_int_equal(n, 1);
	assert_string_equal(ops[0].name, "time.sleep(0.06)");
	assert_int_equal(ops[0].category, CAT_SLEEP);
	assert_int_equal(ops[0].weight, 50);
	assert_string_equal(ops[0].syscall, "clock_nanosleep");
	assert_int_equal(ops[0].duration_ns, 60 * MS + 100000);
	assert_int_equal(severity_score(ops, n, 0), 50);
}

static void test_two_audit_events_same_site(void **state)
{
	struct op ops[8];
	struct raw_op a1 = at_site(audit_rec("open", "/a", "r", NULL), 0xc0de, 0x42);
	struct raw_op a2 = at_site(audit_rec("open", "/b", "r", NULL), 0xc0de, 0x42);
	size_t n;

	n = ops_add(ops, 0, 8, &a1, 0);
	n = ops_add(ops, n, 8, &a2, 1);
	assert_int_equal(n, 2);
	assert_string_equal(ops[0].name, "open(/a, r)");
	assert_string_equal(ops[1].name, "open(/b, r)");
	assert_int_equal(ops[1].first_raw, 1);
	assert_int_equal(severity_score(ops, n, 0), 20);
}

static void test_primary_after_primary_same_site(void **state)
{
	/* a loop body calling open() twice from the same instruction: two operations */
	struct op ops[8];
	struct raw_op s1 = at_site(sys_rec(__NR_openat), 0xc0de, 0x42);
	struct raw_op s2 = at_site(sys_rec(__NR_openat), 0xc0de, 0x42);
	size_t n;

	s1.path = "/a";
	s2.path = "/b";
	n = ops_add(ops, 0, 8, &s1, 0);
	n = ops_add(ops, n, 8, &s2, 1);
	assert_int_equal(n, 2);
	assert_string_equal(ops[0].name, "open(/a)");
	assert_string_equal(ops[1].name, "open(/b)");
	assert_int_equal(ops[0].duration_ns, 1 * MS);
	assert_int_equal(ops[1].duration_ns, 1 * MS);
	assert_false(ops[0].from_audit);
}

static void test_read_after_openat_same_site_merges(void **state)
{
	/* open(p).read() on one line: the read continues the open */
	struct op ops[8];
	struct raw_op o = at_site(sys_rec(__NR_openat), 0xc0de, 0x42);
	struct raw_op rd = at_site(sys_rec(__NR_read), 0xc0de, 0x42);
	size_t n;

	o.path = "/srv/data.txt";
	o.duration_ns = 1 * MS;
	rd.fd_mode = S_IFREG;
	rd.fd_path = "/srv/data.txt";
	rd.duration_ns = 3 * MS;
	n = ops_add(ops, 0, 8, &o, 0);
	n = ops_add(ops, n, 8, &rd, 1);
	assert_int_equal(n, 1);
	assert_string_equal(ops[0].name, "open(/srv/data.txt)");
	assert_string_equal(ops[0].syscall, "openat");
	assert_int_equal(ops[0].duration_ns, 4 * MS);
	assert_int_equal(ops[0].weight, 10);
	assert_int_equal(ops[0].first_raw, 0);
}

static void test_same_syscall_other_site_separate(void **state)
{
	struct op ops[8];
	struct raw_op a = at_site(sys_rec(__NR_read), 0xc0de, 0x42);
	struct raw_op b = at_site(sys_rec(__NR_read), 0xc0de, 0x44);	/* other instruction */
	struct raw_op c = at_site(sys_rec(__NR_read), 0xbeef, 0x42);	/* other code object */
	size_t n;

	a.fd_mode = b.fd_mode = c.fd_mode = S_IFREG;
	n = ops_add(ops, 0, 8, &a, 0);
	n = ops_add(ops, n, 8, &b, 1);
	n = ops_add(ops, n, 8, &c, 2);
	assert_int_equal(n, 3);
	assert_int_equal(ops[2].site_code, 0xbeef);
	assert_int_equal(ops[2].first_raw, 2);

	/* an audit event at another site does not take a syscall either */
	struct raw_op au = at_site(audit_rec("open", "/x", "r", NULL), 0x1111, 0x1);
	struct raw_op so = at_site(sys_rec(__NR_openat), 0x2222, 0x1);

	n = ops_add(ops, 0, 8, &au, 0);
	n = ops_add(ops, n, 8, &so, 1);
	assert_int_equal(n, 2);
	assert_int_equal(ops[0].duration_ns, 0);
	assert_null(ops[0].syscall);
}

static void test_site_zero_never_merges(void **state)
{
	struct op ops[8];
	struct raw_op a = audit_rec("open", "/x", "r", NULL);	/* no Python frame: site 0 */
	struct raw_op s = sys_rec(__NR_openat);
	struct raw_op rd = sys_rec(__NR_read);
	size_t n;

	rd.fd_mode = S_IFREG;
	n = ops_add(ops, 0, 8, &a, 0);
	n = ops_add(ops, n, 8, &s, 1);
	n = ops_add(ops, n, 8, &rd, 2);
	assert_int_equal(n, 3);
	assert_int_equal(ops[0].duration_ns, 0);
	assert_int_equal(ops[1].duration_ns, 1 * MS);
	assert_int_equal(ops[2].duration_ns, 1 * MS);
}

static void test_ignored_audit_adds_nothing(void **state)
{
	struct op ops[4];
	struct raw_op ign = at_site(audit_rec("object.__setattr__", "x", NULL, NULL), 0xc0de, 1);
	size_t n;

	n = ops_add(ops, 0, 4, &ign, 0);
	assert_int_equal(n, 0);
}

static void test_capacity_respected(void **state)
{
	struct op ops[4];
	const size_t max = 3;
	size_t n = 0;

	memset(ops, 0x5a, sizeof(ops));
	for (size_t i = 0; i < 10; i++) {
		struct raw_op r = at_site(sys_rec(__NR_openat), 0x100 + i, 0x2);

		r.path = "/x";
		n = ops_add(ops, n, max, &r, i);
		assert_true(n <= max);
	}
	assert_int_equal(n, max);
	/* the slot past max was never written */
	for (size_t b = 0; b < sizeof(ops[3]); b++)
		assert_int_equal(((unsigned char *)&ops[3])[b], 0x5a);
	assert_int_equal(ops[2].site_code, 0x102);

	/* max 0: nothing, ever */
	struct raw_op r = at_site(sys_rec(__NR_openat), 0x1, 0x2);

	assert_int_equal(ops_add(ops, 0, 0, &r, 0), 0);
}

/* ---- standard library paths ------------------------------------------------------------ */

static void test_is_stdlib_path(void **state)
{
	assert_true(is_stdlib_path("/usr/lib/python3.11/asyncio/events.py"));
	assert_true(is_stdlib_path("/usr/lib/python3.11/asyncio/base_events.py"));
	assert_true(is_stdlib_path("/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py"));
	assert_true(is_stdlib_path("/usr/local/lib/python3.12/socket.py"));
	assert_true(is_stdlib_path("<frozen importlib._bootstrap>"));
	assert_true(is_stdlib_path("<frozen importlib._bootstrap_external>"));

	assert_false(is_stdlib_path("/usr/lib/python3/dist-packages/x.py"));
	assert_false(is_stdlib_path("/usr/local/lib/python3.11/dist-packages/x.py"));
	assert_false(is_stdlib_path("/srv/venv/lib/python3.11/site-packages/x.py"));
	assert_false(is_stdlib_path("/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/"
				    "aiohttp/client.py"));
	assert_false(is_stdlib_path("/srv/app.py"));
	assert_false(is_stdlib_path("app.py"));
	assert_false(is_stdlib_path("<stdin>"));
	assert_false(is_stdlib_path("<string>"));
	assert_false(is_stdlib_path(NULL));
	assert_false(is_stdlib_path(""));
}

/* ---- SPEC 4: only what could block counts ---------------------------------------------- */

/* A name lookup of an address literal, or of no host, queries nothing. */
static void test_numeric_host_lookup_is_no_operation(void **state)
{
	static const char *const numeric[] = { "127.0.0.1", "10.0.0.5", "::1", "fe80::1",
					       "NoneType", "" };
	static const char *const names[] = { "example.com", "localhost", "127.0.0.1.example",
					     "db" };
	struct op_class out;

	for (size_t i = 0; i < sizeof(numeric) / sizeof(numeric[0]); i++) {
		struct raw_op g = audit_rec("socket.getaddrinfo", numeric[i], "9101", "0");
		struct raw_op h = audit_rec("socket.gethostbyname", numeric[i], NULL, NULL);

		if (classify_raw(&g, &out))
			fail_msg("getaddrinfo(%s) counted", numeric[i]);
		if (classify_raw(&h, &out))
			fail_msg("gethostbyname(%s) counted", numeric[i]);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct raw_op g = audit_rec("socket.getaddrinfo", names[i], "443", "0");

		if (!classify_raw(&g, &out))
			fail_msg("getaddrinfo(%s) not counted", names[i]);
		expect_class(names[i], out, CAT_DNS, 50);
	}
	/* a reverse lookup of an address does query */
	{
		struct raw_op r = audit_rec("socket.gethostbyaddr", "10.0.0.5", NULL, NULL);

		assert_true(classify_raw(&r, &out));
		expect_class("gethostbyaddr", out, CAT_DNS, 50);
	}
}

/* asyncio's socket.connect on a non-blocking socket: BPF records no syscall for it. */
static void test_connect_audit_alone_is_dropped(void **state)
{
	struct op ops[8];
	struct raw_op c = at_site(audit_rec("socket.connect", "socket", "tuple", NULL), 0xc0de, 1);
	struct raw_op t = at_site(audit_rec("socket.sendto", "socket", "tuple", NULL), 0xc0de, 2);
	struct raw_op m = at_site(audit_rec("socket.sendmsg", "socket", "tuple", NULL), 0xc0de, 3);
	struct raw_op o = at_site(audit_rec("open", "/srv/x", "r", NULL), 0xc0de, 4);
	size_t n = 0;

	n = ops_add(ops, n, 8, &c, 0);
	n = ops_add(ops, n, 8, &t, 1);
	n = ops_add(ops, n, 8, &m, 2);
	n = ops_add(ops, n, 8, &o, 3);
	assert_int_equal(n, 4);
	n = ops_drop_unblocked(ops, n);
	/* open() blocks in user space terms whatever the fd: aiocop counts it */
	assert_int_equal(n, 1);
	assert_string_equal(ops[0].name, "open(/srv/x, r)");
	assert_int_equal(ops[0].first_raw, 3);
	assert_int_equal(severity_score(ops, n, 0), 10);
}

/* A blocking connect, and a timeout socket's connect that waits in poll, both count. */
static void test_connect_audit_with_syscall_counts(void **state)
{
	struct op ops[8];
	struct raw_op a = at_site(audit_rec("socket.connect", "socket", "tuple", NULL), 0xc0de, 1);
	struct raw_op s = at_site(sys_rec(__NR_connect), 0xc0de, 1);
	struct raw_op a2 = at_site(audit_rec("socket.connect", "socket", "tuple", NULL), 0xc0de, 2);
	struct raw_op p = at_site(sys_rec(__NR_poll), 0xc0de, 2);
	struct sockaddr_in sa;
	size_t n = 0;

	sockaddr_v4(&sa, "127.0.0.1", 9101);
	s.sockaddr = (const uint8_t *)&sa;
	s.sockaddr_len = sizeof(sa);
	p.args[1] = 1;			/* one pollfd */
	p.duration_ns = 61 * MS;
	n = ops_add(ops, n, 8, &a, 0);
	n = ops_add(ops, n, 8, &s, 1);
	n = ops_add(ops, n, 8, &a2, 2);
	n = ops_add(ops, n, 8, &p, 3);
	assert_int_equal(n, 2);
	n = ops_drop_unblocked(ops, n);
	assert_int_equal(n, 2);
	assert_string_equal(ops[0].name, "socket.connect(127.0.0.1:9101)");
	assert_string_equal(ops[1].syscall, "poll");
	assert_int_equal(ops[1].duration_ns, 61 * MS);
	assert_int_equal(severity_score(ops, n, 0), 100);
}

/* EAGAIN / EINPROGRESS straight back: no wait; after a wait (a socket timeout): one. */
static void test_eagain_without_wait_is_no_operation(void **state)
{
	struct raw_op c = sys_rec(__NR_connect), r = sys_rec(__NR_recvfrom);
	struct op_class out;

	c.ret = -EINPROGRESS;
	c.duration_ns = 20000;
	assert_false(classify_raw(&c, &out));
	r.fd_mode = S_IFSOCK;
	r.ret = -EAGAIN;
	r.duration_ns = 30000;
	assert_false(classify_raw(&r, &out));
	r.duration_ns = 2 * MS;		/* SO_RCVTIMEO ran out */
	assert_true(classify_raw(&r, &out));
	expect_class("recvfrom after a wait", out, CAT_NETWORK, 10);
	r.ret = 0;
	r.duration_ns = 30000;
	assert_true(classify_raw(&r, &out));
}

/* ---- SPEC 4: thread-lock waits ---------------------------------------------------------- */

static void test_futex_wait_is_a_lock_wait(void **state)
{
	static const uint64_t waits[] = {
		FUTEX_WAIT, FUTEX_WAIT_PRIVATE, FUTEX_WAIT_BITSET_PRIVATE,
		FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, FUTEX_LOCK_PI_PRIVATE,
		FUTEX_LOCK_PI2, FUTEX_WAIT_REQUEUE_PI,
	};
	static const uint64_t others[] = {
		FUTEX_WAKE, FUTEX_WAKE_PRIVATE, FUTEX_WAKE_BITSET, FUTEX_UNLOCK_PI,
		FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP, FUTEX_TRYLOCK_PI,
	};
	struct op_class out;

	for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
		struct raw_op r = sys_rec(__NR_futex);

		r.args[1] = waits[i];
		r.duration_ns = 40 * MS;
		if (!classify_raw(&r, &out))
			fail_msg("futex op %#llx is no wait", (unsigned long long)waits[i]);
		expect_class("futex wait", out, CAT_LOCK, 10);
		assert_string_equal(out.name, "futex(threading lock)");
		assert_string_equal(out.syscall, "futex");
	}
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		struct raw_op r = sys_rec(__NR_futex);

		r.args[1] = others[i];
		if (classify_raw(&r, &out))
			fail_msg("futex op %#llx counted", (unsigned long long)others[i]);
	}
	/* the slices of one timed acquire, at one call site, are one wait */
	{
		struct op ops[4];
		struct raw_op w = at_site(sys_rec(__NR_futex), 0xc0de, 0x42);
		size_t n = 0;

		w.args[1] = FUTEX_WAIT_BITSET_PRIVATE;
		w.duration_ns = 5 * MS;
		for (size_t i = 0; i < 3; i++)
			n = ops_add(ops, n, 4, &w, i);
		assert_int_equal(n, 1);
		assert_int_equal(ops[0].duration_ns, 15 * MS);
		assert_int_equal(ops[0].category, CAT_LOCK);
	}
	/* every thread calls futex: BPF keeps only the waits that lasted */
	assert_true(syscall_info(__NR_futex)->props.flags & SC_FD_WAIT);
}

/* ---- SPEC 4: a long operation, a stall -------------------------------------------------- */

static void test_long_operation_weighs_50(void **state)
{
	struct op ops[4];

	memset(ops, 0, sizeof(ops));
	ops[0].weight = 10;
	ops[0].duration_ns = 30 * MS;		/* exactly the threshold */
	ops[1].weight = 10;
	ops[1].duration_ns = 30 * MS - 1;
	ops[2].weight = 1;
	ops[2].duration_ns = 100 * MS;		/* a stat on a hung NFS mount */
	ops[3].weight = 0;
	ops[3].duration_ns = 1 * MS;
	assert_int_equal(op_weight(&ops[0], 30 * MS), 50);
	assert_int_equal(op_weight(&ops[1], 30 * MS), 10);
	assert_int_equal(op_weight(&ops[2], 30 * MS), 50);
	assert_int_equal(op_weight(&ops[3], 30 * MS), 0);
	assert_int_equal(severity_score(ops, 4, 30 * MS), 110);
	/* a weight-50 operation stays 50; no threshold, no duration rule */
	ops[0].weight = 50;
	assert_int_equal(op_weight(&ops[0], 30 * MS), 50);
	assert_int_equal(severity_score(ops, 4, 0), 61);
}

static void test_stall_raises_the_level(void **state)
{
	/* a callback with nothing blocking (score 0), threshold 30 ms */
	assert_int_equal(callback_level(0, 59.9, 30), LEVEL_LOW);
	assert_int_equal(callback_level(0, 60, 30), LEVEL_MEDIUM);
	assert_int_equal(callback_level(0, 100, 30), LEVEL_MEDIUM);
	assert_int_equal(callback_level(0, 119.9, 30), LEVEL_MEDIUM);
	assert_int_equal(callback_level(0, 120, 30), LEVEL_HIGH);
	assert_int_equal(callback_level(0, 150, 30), LEVEL_HIGH);
	/* the stall only raises: a high score stays high in a short callback */
	assert_int_equal(callback_level(50, 1, 30), LEVEL_HIGH);
	assert_int_equal(callback_level(10, 31, 30), LEVEL_MEDIUM);
	assert_int_equal(callback_level(10, 60, 30), LEVEL_MEDIUM);
	assert_int_equal(callback_level(10, 130, 30), LEVEL_HIGH);
	/* the multiples follow the threshold */
	assert_int_equal(callback_level(0, 100, 50), LEVEL_MEDIUM);
	assert_int_equal(callback_level(0, 199, 50), LEVEL_MEDIUM);
	assert_int_equal(callback_level(0, 200, 50), LEVEL_HIGH);
	assert_int_equal(callback_level(0, 1000, 0), LEVEL_LOW);
}

/* ---- SPEC 3/4: waits and socket calls named by what they waited for -------------------- */

static struct raw_op socket_rec(unsigned nr, struct sockaddr_in *peer, const char *ip,
				uint16_t port)
{
	struct raw_op r = sys_rec(nr);

	sockaddr_v4(peer, ip, port);
	r.fd = 9;
	r.args[0] = 9;
	r.fd_mode = S_IFSOCK;
	r.peer = (const uint8_t *)peer;
	r.peer_len = sizeof(*peer);
	return r;
}

static void test_socket_io_names_its_peer(void **state)
{
	struct sockaddr_in peer;
	struct raw_op r = socket_rec(__NR_recvfrom, &peer, "127.0.0.1", 9101);
	struct op_class out;

	assert_true(classify_raw(&r, &out));
	expect_class("recvfrom", out, CAT_NETWORK, 10);
	assert_string_equal(out.name, "recvfrom(127.0.0.1:9101)");
	/* no peer known: the fd */
	r.peer = NULL;
	assert_true(classify_raw(&r, &out));
	assert_string_equal(out.name, "recvfrom(fd 9)");
}

static void test_database_socket_by_port_or_stack(void **state)
{
	struct sockaddr_in peer;
	struct raw_op pg = socket_rec(__NR_recvfrom, &peer, "10.0.0.5", 5432);
	struct op_class out;

	assert_true(classify_raw(&pg, &out));
	expect_class("recvfrom from PostgreSQL", out, CAT_DATABASE, 10);
	assert_string_equal(out.name, "recvfrom(10.0.0.5:5432)");
	pg = socket_rec(__NR_recvfrom, &peer, "10.0.0.5", 6380);	/* a redis elsewhere */
	assert_true(classify_raw(&pg, &out));
	expect_class("recvfrom, unknown port", out, CAT_NETWORK, 10);
	pg.database_stack = true;
	assert_true(classify_raw(&pg, &out));
	expect_class("recvfrom under redis-py", out, CAT_DATABASE, 10);

	assert_true(is_database_driver_path(
		"/usr/lib/python3/dist-packages/redis/connection.py"));
	assert_true(is_database_driver_path(
		"/venv/lib/python3.11/site-packages/psycopg2/extras.py"));
	assert_true(is_database_driver_path("/usr/lib/python3.11/sqlite3/dbapi2.py"));
	assert_false(is_database_driver_path("/srv/app/worker.py"));
	assert_false(is_database_driver_path("/usr/lib/python3.11/socket.py"));
	assert_false(is_database_driver_path(NULL));
}

static void test_poll_of_one_fd_is_named_by_it(void **state)
{
	struct sockaddr_in peer;
	struct raw_op p = socket_rec(__NR_poll, &peer, "10.0.0.5", 443);
	struct op_class out;

	p.args[1] = 1;
	assert_true(classify_raw(&p, &out));
	expect_class("poll on a socket", out, CAT_NETWORK, 10);
	assert_string_equal(out.name, "poll(socket 10.0.0.5:443)");
	assert_false(out.primary);
	p = socket_rec(__NR_poll, &peer, "10.0.0.5", 5432);
	p.args[1] = 1;
	assert_true(classify_raw(&p, &out));
	expect_class("poll on PostgreSQL", out, CAT_DATABASE, 10);
	assert_string_equal(out.name, "poll(socket 10.0.0.5:5432)");
	/* a child's pipe, by the subprocess module's frame */
	p.fd_mode = S_IFIFO;
	p.peer = NULL;
	assert_true(classify_raw(&p, &out));
	expect_class("poll on a pipe", out, CAT_OTHER, 10);
	assert_string_equal(out.name, "poll(pipe)");
	p.subprocess_stack = true;
	assert_true(classify_raw(&p, &out));
	expect_class("poll on a child's pipe", out, CAT_SUBPROCESS, 10);
	/* several fds, or one BPF could not read: a wait for fd */
	p.fd = -1;
	assert_true(classify_raw(&p, &out));
	assert_string_equal(out.name, "poll(wait for fd)");
}

static void test_sendto_names_its_destination(void **state)
{
	struct sockaddr_in dst;
	struct raw_op r = sys_rec(__NR_sendto);
	struct op_class out;

	sockaddr_v4(&dst, "10.0.0.7", 514);
	r.fd = 4;
	r.args[0] = 4;
	r.fd_mode = S_IFSOCK;
	r.sockaddr = (const uint8_t *)&dst;
	r.sockaddr_len = sizeof(dst);
	assert_true(classify_raw(&r, &out));
	expect_class("sendto", out, CAT_NETWORK, 10);
	assert_string_equal(out.name, "sendto(10.0.0.7:514)");
}

int main(void)
{
	const struct CMUnitTest classify_tests[] = {
		cmocka_unit_test(test_audit_weights),
		cmocka_unit_test(test_audit_unknown_ignored),
		cmocka_unit_test(test_audit_long_args_bounded),
		cmocka_unit_test(test_clock_nanosleep_python_sleep),
		cmocka_unit_test(test_select_sleep_names_its_timeval),
		cmocka_unit_test(test_pselect6_sleep_names_its_timespec),
		cmocka_unit_test(test_select_sleep_without_timeout_rounds_down),
		cmocka_unit_test(test_clock_nanosleep_abs_without_timespec),
		cmocka_unit_test(test_clock_nanosleep_relative),
		cmocka_unit_test(test_nanosleep),
		cmocka_unit_test(test_openat_file),
		cmocka_unit_test(test_database_paths),
		cmocka_unit_test(test_stat_like_weight_1),
		cmocka_unit_test(test_file_mutations_weight_10),
		cmocka_unit_test(test_read_regular_file),
		cmocka_unit_test(test_read_socket),
		cmocka_unit_test(test_connect_network),
		cmocka_unit_test(test_connect_port_53_is_dns),
		cmocka_unit_test(test_connect_without_address),
		cmocka_unit_test(test_sendto_port_53_is_dns),
		cmocka_unit_test(test_accept),
		cmocka_unit_test(test_processes),
		cmocka_unit_test(test_flock_and_kill),
		cmocka_unit_test(test_unlisted_syscall_weight_10),
		cmocka_unit_test(test_names),
	};
	const struct CMUnitTest table_tests[] = {
		cmocka_unit_test(test_table_is_consistent),
		cmocka_unit_test(test_table_arguments),
		cmocka_unit_test(test_table_skip_rules),
	};
	const struct CMUnitTest severity_tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_score_caps_at_50_events),
		cmocka_unit_test(test_score_through_ops_add),
	};
	const struct CMUnitTest merge_tests[] = {
		cmocka_unit_test(test_merge_audit_then_syscall),
		cmocka_unit_test(test_merge_socket_connect_takes_address),
		cmocka_unit_test(test_merge_audit_sleep_keeps_audit_name),
		cmocka_unit_test(test_two_audit_events_same_site),
		cmocka_unit_test(test_primary_after_primary_same_site),
		cmocka_unit_test(test_read_after_openat_same_site_merges),
		cmocka_unit_test(test_same_syscall_other_site_separate),
		cmocka_unit_test(test_site_zero_never_merges),
		cmocka_unit_test(test_ignored_audit_adds_nothing),
		cmocka_unit_test(test_capacity_respected),
	};
	const struct CMUnitTest path_tests[] = {
		cmocka_unit_test(test_is_stdlib_path),
		cmocka_unit_test(test_numeric_host_lookup_is_no_operation),
		cmocka_unit_test(test_connect_audit_alone_is_dropped),
		cmocka_unit_test(test_connect_audit_with_syscall_counts),
		cmocka_unit_test(test_eagain_without_wait_is_no_operation),
		cmocka_unit_test(test_futex_wait_is_a_lock_wait),
		cmocka_unit_test(test_long_operation_weighs_50),
		cmocka_unit_test(test_stall_raises_the_level),
		cmocka_unit_test(test_socket_io_names_its_peer),
		cmocka_unit_test(test_database_socket_by_port_or_stack),
		cmocka_unit_test(test_poll_of_one_fd_is_named_by_it),
		cmocka_unit_test(test_sendto_names_its_destination),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("classify", classify_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("syscall_table", table_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("severity", severity_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("merge", merge_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("stdlib_path", path_tests, NULL, NULL);
	return failed ? 1 : 0;
}
