/*
 * test_metrics_http.c - unit tests for src/metrics_http.c: the endpoint is opened on a free
 * loopback port and served by an sd-event loop run here, while a client thread speaks HTTP
 * over plain sockets: GET /metrics is the rendering with its content type, other paths 404,
 * other methods 405; a client that sends nothing or half a request, one with a header past
 * the memory limit, and a flood past the connection limit neither block another client's
 * scrape nor stall the loop (a timer of the loop measures its longest pause), and the library
 * writes nothing on stderr. An address in use, or one that is not an address, is said in
 * one line.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <cmocka.h>

#include "metrics_http.h"

#define REPLY_MAX	(256 * 1024)
#define CLIENT_TIMEOUT_S	5	/* a reply slower than this fails the test */
#define FLOOD		30		/* past the endpoint's 16 connections */
#define TICK_US		10000
#define GUARD_US	(60 * 1000000ull)

/* ---- the client side (a thread) ------------------------------------------------------ */

struct reply {
	int status;
	char *head;			/* status line and headers */
	char *body;
	size_t body_len;
	double seconds;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A connected socket to the endpoint, or -1. */
static int dial(int family, int port)
{
	struct timeval tv = { .tv_sec = CLIENT_TIMEOUT_S };
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

		if (n <= 0)
			return false;
		data += n;
		len -= n;
	}
	return true;
}

/*
 * Sends request and reads the reply until the server closes (every request says
 * "Connection: close"). status is 0 when there was no reply, -1 when it took too long.
 */
static void http(int family, int port, const char *request, size_t len, struct reply *r)
{
	char *buf = malloc(REPLY_MAX + 1), *end;
	double start = now_s();
	size_t got = 0;
	ssize_t n = 0;
	int fd = dial(family, port);

	memset(r, 0, sizeof(*r));
	if (!buf || fd < 0)
		goto out;
	send_all(fd, request, len);		/* a refused one may still have a reply */
	while (got < REPLY_MAX && (n = recv(fd, buf + got, REPLY_MAX - got, 0)) > 0)
		got += n;
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		r->status = -1;
	buf[got] = 0;
	end = strstr(buf, "\r\n\r\n");
	if (end && r->status == 0 && sscanf(buf, "HTTP/1.%*d %d", &r->status) == 1) {
		r->head = strndup(buf, end - buf);
		r->body_len = got - (end + 4 - buf);
		r->body = malloc(r->body_len + 1);
		memcpy(r->body, end + 4, r->body_len);
		r->body[r->body_len] = 0;
	}
out:
	r->seconds = now_s() - start;
	if (fd >= 0)
		close(fd);
	free(buf);
}

static void http_text(int family, int port, const char *request, struct reply *r)
{
	http(family, port, request, strlen(request), r);
}

static void reply_free(struct reply *r)
{
	free(r->head);
	free(r->body);
}

/* What the client thread did, for the test to check once the loop has stopped. */
struct script {
	int port;
	int done_fd;			/* written when the client is done */
	struct reply get, head, not_found, post, huge, after_huge, flood_scrape, after_flood;
	int silent_ok, partial_ok, flooded;
};

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

static void hostile_and_plain(struct script *s)
{
	int silent = dial(AF_INET, s->port), partial = dial(AF_INET, s->port);
	size_t huge_len = 64 * 1024;
	char *huge = malloc(huge_len + 64);

	/* held open, one silent, one with half a request line, while the others come */
	s->silent_ok = silent >= 0;
	s->partial_ok = partial >= 0 && send_all(partial, "GET /metr", 9);
	http_text(AF_INET, s->port, REQ("GET", "/metrics"), &s->get);
	http_text(AF_INET, s->port, REQ("HEAD", "/metrics"), &s->head);
	http_text(AF_INET, s->port, REQ("GET", "/"), &s->not_found);
	http_text(AF_INET, s->port, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: "
		  "close\r\nContent-Length: 5\r\n\r\nhello", &s->post);
	/* a header past the connection's memory */
	if (huge) {
		int n = snprintf(huge, 64, "GET /metrics HTTP/1.1\r\nX-Big: ");

		memset(huge + n, 'a', huge_len);
		memcpy(huge + n + huge_len, "\r\n\r\n", 4);
		http(AF_INET, s->port, huge, n + huge_len + 4, &s->huge);
		free(huge);
	}
	http_text(AF_INET, s->port, REQ("GET", "/metrics"), &s->after_huge);
	if (silent >= 0)
		close(silent);
	if (partial >= 0)
		close(partial);
}

/* More connections than the endpoint takes, all silent; then they go. */
static void flood(struct script *s)
{
	int fds[FLOOD];

	for (int i = 0; i < FLOOD; i++) {
		fds[i] = dial(AF_INET, s->port);
		s->flooded += fds[i] >= 0;
	}
	/* while it lasts a scrape may be refused, but it is answered or closed, never hung */
	http_text(AF_INET, s->port, REQ("GET", "/metrics"), &s->flood_scrape);
	for (int i = 0; i < FLOOD; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	/* the endpoint sees them gone on its next turn: a few tries */
	for (int i = 0; i < 50; i++) {
		reply_free(&s->after_flood);
		http_text(AF_INET, s->port, REQ("GET", "/metrics"), &s->after_flood);
		if (s->after_flood.status == 200)
			break;
		usleep(20000);
	}
}

static void *client(void *arg)
{
	struct script *s = arg;

	hostile_and_plain(s);
	flood(s);
	if (write(s->done_fd, "x", 1) != 1)
		abort();
	return NULL;
}

/* ---- the loop side -------------------------------------------------------------------- */

struct loop_watch {
	uint64_t last_us, max_gap_us;
};

static int on_done(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(src), 0);
}

static int on_guard(sd_event_source *src, uint64_t usec, void *userdata)
{
	return sd_event_exit(sd_event_source_get_event(src), 1);
}

/* The loop's own pulse: how long it went without running this. */
static int on_tick(sd_event_source *src, uint64_t usec, void *userdata)
{
	struct loop_watch *w = userdata;
	uint64_t now;

	sd_event_now(sd_event_source_get_event(src), CLOCK_MONOTONIC, &now);
	if (w->last_us && now - w->last_us > w->max_gap_us)
		w->max_gap_us = now - w->last_us;
	w->last_us = now;
	sd_event_source_set_time(src, now + TICK_US);
	return 0;
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static struct metrics *some_metrics(void)
{
	const char *names[] = { "orders-api" };
	struct metrics *m = metrics_new("9.9.9");

	assert_non_null(m);
	assert_int_equal(metrics_set_services(m, names, 1), 0);
	metrics_set_watched(m, "orders-api", 4);
	metrics_slow_callback(m, "orders-api", LEVEL_HIGH, 0.5);
	return m;
}

static struct metrics_http *open_ok(sd_event *loop, const char *listen, const struct metrics *m)
{
	struct metrics_http *h = NULL;
	char err[256] = "";
	int ret = metrics_http_open(&h, loop, listen, m, err, sizeof(err));

	if (ret)
		print_message("metrics_http_open(%s) = %d: %s\n", listen, ret, err);
	assert_int_equal(ret, 0);
	assert_non_null(h);
	return h;
}

static bool has_header(const char *head, const char *header)
{
	return head && strcasestr(head, header);
}

static void check_metrics_reply(const struct reply *r, const struct metrics *m)
{
	size_t len;
	char *want = metrics_render(m, &len);

	assert_int_equal(r->status, 200);
	assert_true(has_header(r->head, "\r\nContent-Type: text/plain; version=0.0.4; "
				"charset=utf-8"));
	assert_int_equal(r->body_len, len);
	assert_memory_equal(r->body, want, len);
	free(want);
}

static void test_serves_and_survives_hostile_clients(void **state)
{
	struct script s = { 0 };
	struct loop_watch w = { 0 };
	struct metrics *m = some_metrics();
	struct metrics_http *h;
	sd_event_source *done, *tick, *guard;
	char listen[64], errpath[] = "/tmp/test_metrics_http.XXXXXX";
	int pipefd[2], saved_err, errfd, ret;
	struct stat st;
	sd_event *loop, *fresh;
	pthread_t t;

	assert_int_equal(sd_event_new(&loop), 0);
	s.port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", s.port);
	/* what the library might say goes to a file, to be found empty */
	errfd = mkstemp(errpath);
	assert_true(errfd >= 0);
	unlink(errpath);
	saved_err = dup(STDERR_FILENO);
	dup2(errfd, STDERR_FILENO);

	h = open_ok(loop, listen, m);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	s.done_fd = pipefd[1];
	assert_true(sd_event_add_io(loop, &done, pipefd[0], EPOLLIN, on_done, NULL) >= 0);
	assert_true(sd_event_add_time_relative(loop, &tick, CLOCK_MONOTONIC, TICK_US, 1000,
					       on_tick, &w) >= 0);
	sd_event_source_set_enabled(tick, SD_EVENT_ON);
	assert_true(sd_event_add_time_relative(loop, &guard, CLOCK_MONOTONIC, GUARD_US, 0,
					       on_guard, NULL) >= 0);
	assert_int_equal(pthread_create(&t, NULL, client, &s), 0);
	ret = sd_event_loop(loop);
	pthread_join(t, NULL);

	metrics_http_close(h);
	/* its closed connections wait in TIME_WAIT: SO_REUSEADDR lets a restart bind at once
	 * (on a new loop: a loop that has exited takes no new source) */
	assert_int_equal(sd_event_new(&fresh), 0);
	h = open_ok(fresh, listen, m);
	metrics_http_close(h);
	sd_event_unref(fresh);
	dup2(saved_err, STDERR_FILENO);
	close(saved_err);
	assert_int_equal(ret, 0);		/* not the guard */

	assert_true(s.silent_ok && s.partial_ok);
	check_metrics_reply(&s.get, m);
	assert_true(s.get.seconds < 1);		/* not held up by the silent ones */
	assert_int_equal(s.head.status, 200);
	assert_int_equal(s.head.body_len, 0);
	assert_int_equal(s.not_found.status, 404);
	assert_int_equal(s.post.status, 405);
	assert_true(has_header(s.post.head, "\r\nAllow: GET, HEAD"));
	/* refused with a status or closed, not waited on */
	assert_true(s.huge.status == 0 || s.huge.status >= 400);
	check_metrics_reply(&s.after_huge, m);
	assert_true(s.flooded > 0);
	assert_int_not_equal(s.flood_scrape.status, -1);
	check_metrics_reply(&s.after_flood, m);
	print_message("header past the limit: %d; scrape during the flood (%d connected): %d\n",
		      s.huge.status, s.flooded, s.flood_scrape.status);
	print_message("loop's longest pause: %.1f ms\n", w.max_gap_us / 1000.0);
	assert_true(w.max_gap_us < 500000);
	assert_int_equal(fstat(errfd, &st), 0);
	assert_int_equal(st.st_size, 0);

	reply_free(&s.get);
	reply_free(&s.head);
	reply_free(&s.not_found);
	reply_free(&s.post);
	reply_free(&s.huge);
	reply_free(&s.after_huge);
	reply_free(&s.flood_scrape);
	reply_free(&s.after_flood);
	close(errfd);
	close(pipefd[0]);
	close(pipefd[1]);
	sd_event_source_unref(done);
	sd_event_source_unref(tick);
	sd_event_source_unref(guard);
	sd_event_unref(loop);
	metrics_free(m);
}

/* ---- IPv6, and what cannot be opened -------------------------------------------------- */

struct one_get {
	int port;
	int done_fd;
	struct reply r;
};

static void *get_v6(void *arg)
{
	struct one_get *g = arg;

	http_text(AF_INET6, g->port, REQ("GET", "/metrics"), &g->r);
	if (write(g->done_fd, "x", 1) != 1)
		abort();
	return NULL;
}

static void test_ipv6(void **state)
{
	struct metrics *m = some_metrics();
	struct one_get g = { 0 };
	struct metrics_http *h;
	sd_event_source *done;
	char listen[64];
	int pipefd[2];
	pthread_t t;
	sd_event *loop;
	int probe = socket(AF_INET6, SOCK_STREAM, 0);

	if (probe < 0) {
		metrics_free(m);
		skip();
	}
	close(probe);
	assert_int_equal(sd_event_new(&loop), 0);
	g.port = free_port();
	snprintf(listen, sizeof(listen), "[::1]:%d", g.port);
	h = open_ok(loop, listen, m);
	assert_int_equal(pipe2(pipefd, O_CLOEXEC), 0);
	g.done_fd = pipefd[1];
	assert_true(sd_event_add_io(loop, &done, pipefd[0], EPOLLIN, on_done, NULL) >= 0);
	assert_int_equal(pthread_create(&t, NULL, get_v6, &g), 0);
	assert_int_equal(sd_event_loop(loop), 0);
	pthread_join(t, NULL);
	check_metrics_reply(&g.r, m);

	reply_free(&g.r);
	metrics_http_close(h);
	close(pipefd[0]);
	close(pipefd[1]);
	sd_event_source_unref(done);
	sd_event_unref(loop);
	metrics_free(m);
}

static void test_address_in_use(void **state)
{
	struct metrics *m = some_metrics();
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct metrics_http *h, *again = NULL;
	char addr[64], err[256], want[128];
	sd_event *loop;
	int port = free_port(), fd;

	assert_int_equal(sd_event_new(&loop), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(want, sizeof(want), "metrics_listen %s: Address already in use", addr);

	/* a second endpoint on the address of the first */
	h = open_ok(loop, addr, m);
	assert_int_equal(metrics_http_open(&again, loop, addr, m, err, sizeof(err)),
			 -EADDRINUSE);
	assert_null(again);
	assert_string_equal(err, want);
	/* closed, the address is free again at once */
	metrics_http_close(h);
	h = open_ok(loop, addr, m);
	metrics_http_close(h);

	/* another program's socket, without SO_REUSEADDR */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = htons(port);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(metrics_http_open(&again, loop, addr, m, err, sizeof(err)),
			 -EADDRINUSE);
	assert_string_equal(err, want);
	close(fd);

	sd_event_unref(loop);
	metrics_free(m);
}

static void test_not_an_address(void **state)
{
	static const char *const bad[] = {
		"", "127.0.0.1", "127.0.0.1:", ":9477", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:99999999999999999999", "127.0.0.1:94x7", "127.0.0.1:-1",
		"127.0.0.1: 9477", "localhost:9477", "::1:9477", "[::1]9477", "[::1:9477",
		"[]:9477", "[127.0.0.1]:9477", "300.0.0.1:9477", "1.2.3.4:80\nX-Injected: 1",
		"[::1]:9477:1",
	};
	struct metrics *m = some_metrics();
	struct metrics_http *h = NULL;
	char err[256], head[128], longest[200];
	sd_event *loop;

	assert_int_equal(sd_event_new(&loop), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int ret = metrics_http_open(&h, loop, bad[i], m, err, sizeof(err));

		if (ret != -EINVAL)
			print_message("%s: %d %s\n", bad[i], ret, err);
		assert_int_equal(ret, -EINVAL);
		assert_null(h);
		assert_null(strchr(err, '\n'));
		snprintf(head, sizeof(head), "metrics_listen %.*s", (int)strcspn(bad[i], "\n"),
			 bad[i]);
		assert_memory_equal(err, head, strlen(head));
		assert_non_null(strstr(err, ": not ADDRESS:PORT"));
	}
	/* a long one is cut in the message */
	memset(longest, '1', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = 0;
	assert_int_equal(metrics_http_open(&h, loop, longest, m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "...: not ADDRESS:PORT"));
	assert_int_equal(strstr(err, "...") - err, strlen("metrics_listen ") + 64);
	sd_event_unref(loop);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_serves_and_survives_hostile_clients),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_address_in_use),
		cmocka_unit_test(test_not_an_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
