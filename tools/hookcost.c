// SPDX-License-Identifier: GPL-2.0
/*
 * Attaches one stand-in for a system-wide syscall hook (see tools/hookcost.bpf.c), says
 * "attached" on stderr and holds it until SIGINT or SIGTERM, so that tools/bench_syscalls.py
 * can time unwatched syscalls under it like under aiocopd; or, with "detach", times how long
 * closing each kind of link aiocopd holds takes.
 *
 *   clang -g -O2 -target bpf -D__TARGET_ARCH_x86 -Ibuild -c tools/hookcost.bpf.c \
 *         -o build/hookcost.bpf.o
 *   bpftool gen skeleton build/hookcost.bpf.o > build/hookcost.skel.h
 *   cc -O2 -Ibuild -o build/hookcost tools/hookcost.c -lbpf -lelf -lz
 *   build/hookcost raw|raw_empty|read_empty|read_bitmap [-p PID, ignored]
 *   build/hookcost detach LIBRARY OFFSET	(a uprobe-able instruction, e.g. getppid in libc)
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "hookcost.skel.h"

#define MAX_LINKS	8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int attach_pair(struct hookcost_bpf *skel, const char *variant, struct bpf_link **l)
{
	if (strcmp(variant, "raw") == 0) {
		l[0] = bpf_program__attach(skel->progs.raw_enter);
		l[1] = bpf_program__attach(skel->progs.raw_exit);
	} else if (strcmp(variant, "raw_empty") == 0) {
		l[0] = bpf_program__attach(skel->progs.raw_empty_enter);
		l[1] = bpf_program__attach(skel->progs.raw_empty_exit);
	} else if (strcmp(variant, "read_empty") == 0 || strcmp(variant, "read_bitmap") == 0) {
		struct bpf_program *prog = strcmp(variant, "read_empty") == 0 ?
					   skel->progs.tp_empty : skel->progs.tp_bitmap;

		l[0] = bpf_program__attach_tracepoint(prog, "syscalls", "sys_enter_read");
		l[1] = bpf_program__attach_tracepoint(prog, "syscalls", "sys_exit_read");
	} else {
		return -EINVAL;
	}
	return l[0] && l[1] ? 0 : -errno;
}

static int hold(struct hookcost_bpf *skel, const char *variant)
{
	struct bpf_link *l[2] = {};
	int ret = attach_pair(skel, variant, l);

	if (ret) {
		fprintf(stderr, "hookcost: cannot attach %s: %s\n", variant, strerror(-ret));
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "hookcost: attached %s\n", variant);
	while (!stop)
		pause();
out:
	bpf_link__destroy(l[0]);
	bpf_link__destroy(l[1]);
	return ret ? 1 : 0;
}

static void close_timed(const char *what, struct bpf_link **l, int n)
{
	double start = now_ms(), took;

	for (int i = 0; i < n; i++)
		bpf_link__destroy(l[i]);
	took = now_ms() - start;
	printf("%-30s %d links: %7.1f ms, %6.1f ms each\n", what, n, took, took / n);
}

static struct bpf_link *attach_sampler(struct bpf_program *prog)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_TASK_CLOCK,
		.sample_period = 3000000,
	};
	int fd = syscall(SYS_perf_event_open, &attr, getpid(), -1, -1, PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? NULL : bpf_program__attach_perf_event(prog, fd);
}

/* As many links of each type as a typical `aiocopd -p` run holds, then closed one by one. */
static int time_detach(struct hookcost_bpf *skel, const char *lib, unsigned long offset)
{
	static const char *const events[] = {
		"sys_enter_read", "sys_exit_read", "sys_enter_write", "sys_exit_write",
		"sys_enter_openat", "sys_exit_openat",
	};
	struct bpf_link *l[MAX_LINKS];

	for (int i = 0; i < 6; i++)
		l[i] = bpf_program__attach_uprobe(skel->progs.uprobe_empty, false, -1, lib,
						  offset);
	close_timed("uprobe (perf event)", l, 6);
	for (int i = 0; i < 4; i++)
		l[i] = bpf_program__attach(skel->progs.sched_empty);
	close_timed("tp_btf/sched_switch (raw)", l, 4);
	for (int i = 0; i < 2; i++)
		l[i] = attach_sampler(skel->progs.sample_empty);
	close_timed("perf_event task-clock sampler", l, 2);
	for (int i = 0; i < 6; i++)
		l[i] = bpf_program__attach_tracepoint(skel->progs.tp_empty, "syscalls", events[i]);
	close_timed("syscall tracepoint (perf event)", l, 6);
	return 0;
}

int main(int argc, char **argv)
{
	struct hookcost_bpf *skel;
	int ret;

	if (argc < 2 || (strcmp(argv[1], "detach") == 0 && argc < 4)) {
		fprintf(stderr, "usage: %s raw|raw_empty|read_empty|read_bitmap\n"
			"       %s detach LIBRARY OFFSET\n", argv[0], argv[0]);
		return 2;
	}
	skel = hookcost_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr, "hookcost: cannot load: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(argv[1], "detach") == 0)
		ret = time_detach(skel, argv[2], strtoul(argv[3], NULL, 0));
	else
		ret = hold(skel, argv[1]);
	hookcost_bpf__destroy(skel);
	return ret;
}
