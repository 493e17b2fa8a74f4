/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The maps more than one part of the BPF object uses. Each is defined once, in
 * bpf/maps.bpf.c; the other parts see the extern declarations below, which libbpf's static
 * linker (bpftool gen object) resolves to that definition. The linker checks that an extern
 * map has the definition's type, key, value and size, so both use the struct types here.
 */
#ifndef AIOCOPD_MAPS_BPF_H
#define AIOCOPD_MAPS_BPF_H

/* One monitored process, keyed by tgid; the loader adds and removes them. */
struct targets_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct target_cfg);
};

/* Per loop thread, keyed by tid: created by the first epoll return BPF sees. */
struct threads_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct thread_state);
};

/* The identity of the callback each loop thread runs, keyed by tid. */
struct idents_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct callback_ident);
};

/* Per loop thread statistics for trace and exec (TARGET_STATS), keyed by tid. */
struct loop_stats_map {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct loop_stats);
};

/*
 * The longest named callbacks of each loop thread's current iteration, armed. LRU: a thread
 * whose entry was never removed cannot keep a new one out.
 */
struct tops_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AIOCOPD_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct iteration_tops);
};

#define EVENTS_RING_BYTES	(8 << 20)

/* All records, without wakeups unless a record says otherwise (record_submit). */
struct events_map {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
};

/* Records that could not be kept, per CPU and LOST_* reason; user space reports the sum. */
struct lost_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_KINDS);
	__type(key, __u32);
	__type(value, __u64);
};

/*
 * Per CPU: a program of ours that changes a loop thread's state runs here (its count; see
 * program_begin in common.bpf.h).
 */
struct programs_running_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

extern struct targets_map targets SEC(".maps");
extern struct threads_map threads SEC(".maps");
extern struct idents_map idents SEC(".maps");
extern struct loop_stats_map loop_stats SEC(".maps");
extern struct tops_map tops SEC(".maps");
extern struct events_map events SEC(".maps");
extern struct lost_map lost SEC(".maps");
extern struct programs_running_map programs_running SEC(".maps");

/* The entry of key in a hash map, made from empty (a zeroed copy) if there is none yet. */
static __always_inline void *map_entry(void *map, const __u32 *key, const void *empty)
{
	void *v = bpf_map_lookup_elem(map, key);

	if (v)
		return v;
	bpf_map_update_elem(map, key, empty, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif /* AIOCOPD_MAPS_BPF_H */
