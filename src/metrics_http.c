// SPDX-License-Identifier: GPL-2.0
/*
 * The metrics endpoint (see metrics_http.h). libmicrohttpd runs without a thread of its
 * own, in epoll mode: its epoll descriptor is an io source of the caller's loop and its
 * next deadline a timer, so requests are served between the loop's other events and the
 * metrics need no lock. The socket is opened here, not by the library, so that an address
 * in use is said in one line. Clients are whoever can reach the address: the limits below
 * bound what they hold (connections, memory, time), and no request can block the loop.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <microhttpd.h>

#include "metrics_http.h"

#define HTTP_CONNECTIONS	16
#define HTTP_CONNECTIONS_PER_IP	8	/* a remote host cannot take every slot */
#define HTTP_TIMEOUT_S		10	/* a silent or slow client is dropped then */
#define HTTP_MEMORY		(16 * 1024)	/* per connection: request line and headers */
#define HTTP_BACKLOG		16
#define HTTP_TIMER_ACCURACY_US	1000	/* sd-event's default (250 ms) would delay work */
#define LISTEN_MAX		64	/* "[" + an IPv6 address + "]:" + a port fits */

#define CONTENT_TYPE_METRICS	"text/plain; version=0.0.4; charset=utf-8"

struct metrics_http {
	struct MHD_Daemon *mhd;
	sd_event *loop;
	sd_event_source *io;
	sd_event_source *timer;
	const struct metrics *m;
};

/* ---- requests ---------------------------------------------------------------------- */

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text,
				  const char *allow)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_metrics(struct metrics_http *h, struct MHD_Connection *c)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;
	char *text = metrics_render(h->m, &len);

	if (!text)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
	r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE_METRICS);
	ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * Answered at the first call, with the headers: a body (of a POST) is never read, the
 * library discards it and closes the connection after the reply. HEAD is GET without the
 * body (the library leaves it out).
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	if (strcmp(url, "/metrics"))
		return reply_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n", NULL);
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n",
				  "GET, HEAD");
	return reply_metrics(cls, c);
}

/* What the library would say goes nowhere: a client's errors are not the service's. */
static void drop_log(void *cls, const char *fmt, va_list ap)
{
}

/* ---- the loop ---------------------------------------------------------------------- */

/*
 * Lets the library do what is ready, then arms the timer for its next deadline: a timeout
 * of a connection, or 0 when it holds work no descriptor will signal. A handler returning
 * an error would have sd-event disable its source, so errors are not returned.
 */
static int run_http(struct metrics_http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;
	uint64_t now;

	MHD_run(h->mhd);
	if (MHD_get_timeout(h->mhd, &ms) != MHD_YES) {
		sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
		return 0;
	}
	if (ms > 3600 * 1000)
		ms = 3600 * 1000;
	if (sd_event_now(h->loop, CLOCK_MONOTONIC, &now) >= 0 &&
	    sd_event_source_set_time(h->timer, now + ms * 1000) >= 0)
		sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
	return 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	return run_http(userdata);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	return run_http(userdata);
}

static int attach_to_loop(struct metrics_http *h)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	int ret;

	if (!info)
		return -EINVAL;
	ret = sd_event_add_io(h->loop, &h->io, info->epoll_fd, EPOLLIN, on_io, h);
	if (ret < 0)
		return ret;
	ret = sd_event_add_time(h->loop, &h->timer, CLOCK_MONOTONIC, 0, HTTP_TIMER_ACCURACY_US,
				on_timer, h);
	if (ret < 0)
		return ret;
	return run_http(h);
}

/* ---- the socket -------------------------------------------------------------------- */

/* "HOST:PORT" or "[HOST]:PORT" into its parts; the port is digits, 1 to 65535. */
static int split_listen(const char *listen, char *host, char *port)
{
	const char *colon, *end;
	size_t n = strnlen(listen, LISTEN_MAX);
	unsigned long v = 0;

	if (n == LISTEN_MAX)
		return -EINVAL;
	if (listen[0] == '[') {
		end = strchr(listen, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		listen++;
		colon = end + 1;
	} else {
		colon = strrchr(listen, ':');
		end = colon;
		if (!colon || memchr(listen, ':', colon - listen))
			return -EINVAL;		/* an IPv6 address wants its brackets */
	}
	if (end == listen || !colon[1] || strlen(colon + 1) > 5)
		return -EINVAL;
	for (const char *p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	if (v < 1 || v > 65535)
		return -EINVAL;
	memcpy(host, listen, end - listen);
	host[end - listen] = 0;
	snprintf(port, 8, "%lu", v);
	return 0;
}

static int resolve_listen(const char *listen, struct addrinfo **ai)
{
	struct addrinfo hints = {
		.ai_family = listen[0] == '[' ? AF_INET6 : AF_INET,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	char host[LISTEN_MAX], port[8];
	int ret = split_listen(listen, host, port);

	if (ret)
		return ret;
	ret = getaddrinfo(host, port, &hints, ai);
	if (ret == EAI_MEMORY)
		return -ENOMEM;
	return ret ? -EINVAL : 0;
}

/* A listening socket; -errno. Non-blocking, as the library's epoll mode needs. */
static int open_listener(const struct addrinfo *ai, int *out)
{
	int one = 1;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, HTTP_BACKLOG)) {
		int ret = -errno;

		close(fd);
		return ret;
	}
	*out = fd;
	return 0;
}

/*
 * The library closes the socket given to it on some of its failure paths and not on
 * others: it is closed here only if the descriptor still is that socket.
 */
static void close_if_same(int fd, const struct stat *was)
{
	struct stat st;

	if (!fstat(fd, &st) && st.st_dev == was->st_dev && st.st_ino == was->st_ino)
		close(fd);
}

static int start_daemon(struct metrics_http *h, int fd)
{
	struct stat st;

	if (fstat(fd, &st)) {
		close(fd);
		return -errno;
	}
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, on_request, h,
				  MHD_OPTION_EXTERNAL_LOGGER, drop_log, NULL,
				  MHD_OPTION_LISTEN_SOCKET, fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONNECTIONS,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned)HTTP_CONNECTIONS_PER_IP,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_MEMORY,
				  MHD_OPTION_END);
	if (!h->mhd) {
		close_if_same(fd, &st);
		return -ENOMEM;
	}
	return 0;
}

/* ---- the endpoint ------------------------------------------------------------------ */

/* The address as written, for the error line: bounded, and one line whatever it holds. */
static void say_error(char *err, size_t errsz, const char *listen, const char *what)
{
	char shown[LISTEN_MAX + 4];
	size_t i;

	for (i = 0; listen[i] && i < LISTEN_MAX; i++)
		shown[i] = (unsigned char)listen[i] < 0x20 || listen[i] == 0x7f ? '?' : listen[i];
	strcpy(shown + i, listen[i] ? "..." : "");
	snprintf(err, errsz, "metrics_listen %s: %s", shown, what);
}

int metrics_http_open(struct metrics_http **out, sd_event *loop, const char *listen,
		      const struct metrics *m, char *err, size_t errsz)
{
	struct metrics_http *h;
	struct addrinfo *ai;
	int fd = -1, ret;

	*out = NULL;
	ret = resolve_listen(listen, &ai);
	if (ret) {
		say_error(err, errsz, listen, ret == -ENOMEM ? strerror(ENOMEM) :
			  "not ADDRESS:PORT with a numeric address and a port from 1 to 65535 "
			  "(127.0.0.1:9477, [::1]:9477)");
		return ret;
	}
	ret = open_listener(ai, &fd);
	freeaddrinfo(ai);
	if (ret) {
		say_error(err, errsz, listen, strerror(-ret));
		return ret;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		say_error(err, errsz, listen, strerror(ENOMEM));
		return -ENOMEM;
	}
	h->loop = sd_event_ref(loop);
	h->m = m;
	ret = start_daemon(h, fd);
	if (!ret)
		ret = attach_to_loop(h);
	if (ret) {
		say_error(err, errsz, listen, h->mhd ? strerror(-ret) :
			  "the HTTP server could not start");
		metrics_http_close(h);
		return ret;
	}
	*out = h;
	return 0;
}

/* The sources go first: the library's descriptors must leave the loop before they close. */
void metrics_http_close(struct metrics_http *h)
{
	if (!h)
		return;
	sd_event_source_disable_unref(h->io);
	sd_event_source_disable_unref(h->timer);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	sd_event_unref(h->loop);
	free(h);
}
