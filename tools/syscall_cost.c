// SPDX-License-Identifier: GPL-2.0
/*
 * What one cheap syscall costs this process: a tight loop of getppid(), which aiocopd does
 * not trace, or of a one-byte read() from /dev/zero, which it does. Timed in thread CPU
 * time so that being preempted by other work on a shared machine does not count. Prints
 * one ns-per-call figure per run, then the median of the runs: run in a process aiocopd
 * does not watch, it shows what aiocopd's system-wide syscall hooks cost everyone else.
 *
 *   cc -O2 -o build/syscall_cost tools/syscall_cost.c
 *   build/syscall_cost [calls per run, default 2000000] [runs, default 7] [getppid|read]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS	101

static double thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* syscall() rather than getppid() so no libc can answer from a cache. */
static double ns_per_call(long calls, int zero_fd)
{
	double start = thread_cpu_ns();
	char c;

	for (long i = 0; i < calls; i++) {
		if (zero_fd >= 0)
			syscall(SYS_read, zero_fd, &c, 1);
		else
			syscall(SYS_getppid);
	}
	return (thread_cpu_ns() - start) / calls;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 2000000;
	int runs = argc > 2 ? atoi(argv[2]) : 7;
	const char *what = argc > 3 ? argv[3] : "getppid";
	int zero_fd = -1;
	double ns[MAX_RUNS];

	if (calls <= 0 || runs <= 0 || runs > MAX_RUNS ||
	    (strcmp(what, "getppid") && strcmp(what, "read"))) {
		fprintf(stderr, "usage: %s [calls > 0] [runs 1..%d] [getppid|read]\n", argv[0],
			MAX_RUNS);
		return 2;
	}
	if (strcmp(what, "read") == 0) {
		zero_fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (zero_fd < 0) {
			perror("/dev/zero");
			return 1;
		}
	}
	ns_per_call(calls / 10, zero_fd);	/* warm up caches and the CPU's clock */
	for (int i = 0; i < runs; i++) {
		ns[i] = ns_per_call(calls, zero_fd);
		printf("run %d: %.1f ns/call\n", i + 1, ns[i]);
	}
	qsort(ns, runs, sizeof(ns[0]), cmp_double);
	printf("median: %.1f ns/call\n", ns[runs / 2]);
	return 0;
}
