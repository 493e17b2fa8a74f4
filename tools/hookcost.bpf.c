// SPDX-License-Identifier: GPL-2.0
/*
 * Stand-ins for aiocopd's system-wide syscall hooks, to measure what each design costs
 * processes that are not watched (tools/hookcost.c attaches one variant):
 *
 *   raw          tp_btf/sys_enter and sys_exit whose first work is a bitmap of watched
 *                tgids (an ARRAY map the verifier inlines), then a per-syscall property
 *                lookup: the cheapest filter the raw-tracepoint design could have
 *   raw_empty    the same hooks returning at once: the raw tracepoint's own cost
 *   read_empty   classic syscalls/sys_{enter,exit}_read tracepoints returning at once: the
 *                perf tracepoint path's own cost, which aiocopd pays per traced syscall
 *   read_bitmap  the same with the bitmap filter aiocopd's programs could start with
 *
 * and one program of each link type aiocopd holds, to time how long closing each takes.
 * Nothing is ever watched: the bitmap stays empty.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* One bit per tgid; 512 words cover the default pid_max of 32768. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u32);
} props SEC(".maps");

__u64 traced_calls;

static __always_inline bool current_watched(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 word = tgid / 64;
	__u64 *bits = bpf_map_lookup_elem(&watched, &word);

	return bits && (*bits & (1ULL << (tgid & 63)));
}

static __always_inline int traced(long nr)
{
	__u32 key = nr;
	__u32 *p = bpf_map_lookup_elem(&props, &key);

	if (p && *p)
		__sync_fetch_and_add(&traced_calls, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(raw_enter, struct pt_regs *regs, long id)
{
	return current_watched() ? traced(id) : 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(raw_exit, struct pt_regs *regs, long ret)
{
	return current_watched() ? traced(regs->orig_ax) : 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(raw_empty_enter) { return 0; }
SEC("tp_btf/sys_exit")
int BPF_PROG(raw_empty_exit) { return 0; }

SEC("tp")
int tp_empty(void *ctx) { return 0; }
SEC("tp")
int tp_bitmap(void *ctx) { return current_watched(); }

SEC("uprobe")
int uprobe_empty(struct pt_regs *ctx) { return 0; }
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_empty) { return 0; }
SEC("perf_event")
int sample_empty(void *ctx) { return 0; }
