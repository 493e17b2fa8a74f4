// SPDX-License-Identifier: GPL-2.0
/*
 * The one definition of each map several parts of the BPF object share (declared in
 * bpf/maps.bpf.h and bpf/pyread.bpf.h), and the object's license. aiocopd's BPF object is
 * linked from these parts, each by concern:
 *
 *   loop.bpf.c      loop threads and iterations (epoll)
 *   callback.bpf.c  callback boundaries (Context.run, uvloop) and their collections
 *   syscall.bpf.c   blocking syscalls inside a callback
 *   audit.bpf.c     Python-level operations (audit events)
 *   sched.bpf.c     on-CPU time and CPU samples
 *   family.bpf.c    the processes `aiocopd exec` follows (fork, exec, exit)
 *   hold.bpf.c      processes held stopped for user space, never beyond aiocopd's life
 *
 * One loaded object serves every monitored process: targets are keyed by tgid and threads
 * by tid, as aiocopd's own PID namespace numbers them (bpf/ids.bpf.h). Records go to one ring buffer; user space drains it on a timer.
 */
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

/* aiocopd's own PID namespace (bpf/ids.bpf.h): inode set before loading, level found */
const volatile __u32 owner_pidns_inum = 0;
__u32 owner_pidns_level_plus1 = 0;

struct targets_map targets SEC(".maps");
struct threads_map threads SEC(".maps");
struct idents_map idents SEC(".maps");
struct loop_stats_map loop_stats SEC(".maps");
struct tops_map tops SEC(".maps");
struct events_map events SEC(".maps");
struct lost_map lost SEC(".maps");
struct scratch_map scratch_map SEC(".maps");
struct stack_bottoms_map stack_bottoms SEC(".maps");
struct programs_running_map programs_running SEC(".maps");
