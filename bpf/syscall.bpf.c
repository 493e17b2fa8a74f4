// SPDX-License-Identifier: GPL-2.0
/*
 * Blocking syscalls inside a callback. One program for every traced syscall's entry and one
 * for every exit, loaded (and verified) once and attached by user space to each
 * syscalls/sys_{enter,exit}_NAME tracepoint it lists. Unarmed, only calls that took
 * slow_syscall_ns are recorded.
 */
#include "common.bpf.h"
#include "syscall_nr.h"

#define S_IFMT		00170000
#define S_IFSOCK	0140000
#define S_IFREG		0100000
#define S_IFBLK		0060000
#define O_NONBLOCK	00004000
#define MSG_DONTWAIT	0x40
#define CLONE_THREAD	0x00010000
#define AT_EMPTY_PATH	0x1000

/* Set by the loader before load; defaults in include/aiocopd.h. */
const volatile __u64 slow_syscall_ns = AIOCOPD_SLOW_SYSCALL_NS;
const volatile __u64 slow_wait_ns = AIOCOPD_SLOW_WAIT_NS;
const volatile __u32 max_records_per_callback = AIOCOPD_MAX_RECORDS_PER_CALLBACK;

/* Index of the syscall argument that is an fd whose kind decides whether it can block. */
static __always_inline int fd_arg(__u32 nr)
{
	switch (nr) {
	case NR_read: case NR_write: case NR_pread64: case NR_pwrite64:
	case NR_readv: case NR_writev: case NR_preadv: case NR_pwritev:
	case NR_fsync: case NR_fdatasync: case NR_ftruncate: case NR_flock:
	case NR_connect: case NR_accept: case NR_accept4:
	case NR_sendto: case NR_recvfrom: case NR_sendmsg: case NR_recvmsg:
	case NR_getdents64: case NR_copy_file_range:
		return 0;
	case NR_sendfile:
		return 1;	/* the input file decides */
	}
	return -1;
}

/* Index of a path argument, or -1. */
static __always_inline int path_arg(__u32 nr)
{
	switch (nr) {
	case NR_open: case NR_creat: case NR_stat: case NR_lstat: case NR_access:
	case NR_truncate: case NR_mkdir: case NR_rmdir: case NR_unlink: case NR_readlink:
	case NR_statfs: case NR_rename: case NR_link: case NR_execve:
		return 0;
	case NR_symlink:
		return 1;
	case NR_openat: case NR_openat2: case NR_newfstatat: case NR_statx: case NR_faccessat:
	case NR_faccessat2: case NR_mkdirat: case NR_unlinkat: case NR_renameat:
	case NR_renameat2: case NR_linkat: case NR_readlinkat: case NR_execveat:
		return 1;
	case NR_symlinkat:
		return 2;
	}
	return -1;
}

static __always_inline void fd_info(int fd, __u32 *mode, __u32 *flags)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;

	*mode = 0;
	*flags = 0;
	if (!fdt || fd < 0 || (unsigned int)fd >= BPF_CORE_READ(fdt, max_fds))
		return;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return;
	*mode = BPF_CORE_READ(file, f_inode, i_mode);
	*flags = BPF_CORE_READ(file, f_flags);
}

static __always_inline int is_disk(__u32 mode)
{
	return (mode & S_IFMT) == S_IFREG || (mode & S_IFMT) == S_IFBLK;
}

/* Decide at entry whether this call can block at all; 0 means do not trace it. */
static __always_inline int worth_tracing(__u32 nr, const unsigned long *args, __u32 mode,
					 __u32 flags)
{
	__u64 clone_flags = 0;

	if (fd_arg(nr) >= 0) {
		if (!mode)
			return 0;
		if (!is_disk(mode) && (flags & O_NONBLOCK))
			return 0;	/* a non-blocking fd cannot hold the loop */
		if ((nr == NR_sendto || nr == NR_recvfrom || nr == NR_sendmsg ||
		     nr == NR_recvmsg) && (args[nr == NR_sendmsg || nr == NR_recvmsg ? 2 : 3] &
					   MSG_DONTWAIT))
			return 0;
		return 1;
	}
	switch (nr) {
	case NR_clone:
		return !(args[0] & CLONE_THREAD);	/* threads are not processes */
	case NR_clone3:
		bpf_probe_read_user(&clone_flags, sizeof(clone_flags), (const void *)args[0]);
		return !(clone_flags & CLONE_THREAD);
	case NR_poll:
		return (int)args[2] != 0;	/* a zero timeout only checks */
	case NR_newfstatat: case NR_statx:
		return !(args[nr == NR_statx ? 2 : 3] & AT_EMPTY_PATH);	/* fstat: cheap */
	}
	return 1;
}

static __always_inline int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct thread_state *st;
	unsigned long args[6];
	__u32 tid, pid, mode = 0, flags = 0, nr = 0;
	int fdi;

	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_CALLBACK))
		return 0;
	if (st->flags & THREAD_ITERATION) {
		/*
		 * Unarmed: only a call that turns out slow is looked at, at its exit, which
		 * finds the number and arguments itself. Keep this path short: it runs for
		 * every traced syscall of the loop thread.
		 */
		st->flags |= THREAD_IN_SYSCALL;
		st->sc_start_ns = bpf_ktime_get_ns();
		return 0;
	}
	/* records of argument-less syscalls end inside ->id: read, do not load */
	bpf_probe_read_kernel(&nr, sizeof(nr), &ctx->id);
	fdi = fd_arg(nr);
	/*
	 * A tracepoint program may not load past its own record, and syscalls with fewer
	 * than six arguments have shorter records: copy instead (unused slots are junk).
	 */
	if (bpf_probe_read_kernel(args, sizeof(args), ctx->args))
		return 0;
	if (fdi >= 0)
		fd_info((int)args[fdi & 1], &mode, &flags);
	if (!worth_tracing(nr, args, mode, flags))
		return 0;
	st->flags |= THREAD_IN_SYSCALL;
	st->sc_nr = nr;
	st->sc_start_ns = bpf_ktime_get_ns();
	for (int i = 0; i < 6; i++)
		st->sc_args[i] = args[i];
	st->sc_fd_mode = mode;
	st->sc_fd_flags = flags;
	return 0;
}

/* Copy what identifies the operation: the path, or the socket address. */
static __always_inline void fill_operand(struct event_blocking *ev, __u32 nr)
{
	int pi = path_arg(nr);
	__u64 sa = 0;

	ev->n_str = 0;
	ev->str[0] = 0;
	if (pi >= 0) {
		__u64 path = pi == 0 ? ev->args[0] : pi == 1 ? ev->args[1] : ev->args[2];
		int n = bpf_probe_read_user_str(ev->str, sizeof(ev->str), (const void *)path);
		ev->n_str = n > 0 ? n : 0;
		return;
	}
	if (nr == NR_connect)
		sa = ev->args[1];
	else if (nr == NR_sendto)
		sa = ev->args[4];
	else if (nr == NR_nanosleep)
		sa = ev->args[0];	/* the requested timespec */
	else if (nr == NR_clock_nanosleep)
		sa = ev->args[2];
	if (sa && !bpf_probe_read_user(ev->str, 28, (const void *)sa))
		ev->n_str = 28;
}

static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	struct event_blocking *ev;
	__u32 tid, pid, nr;
	__u64 now, duration, fd;
	int fdi;

	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_SYSCALL))
		return 0;
	st->flags &= ~THREAD_IN_SYSCALL;
	if (!(st->flags & THREAD_IN_CALLBACK))
		return 0;
	now = bpf_ktime_get_ns();
	duration = now - st->sc_start_ns;
	if (st->flags & THREAD_ITERATION) {
		struct pt_regs *regs;

		if (duration < slow_syscall_ns)
			return 0;
		/* the saved user registers still hold the arguments */
		regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		nr = (__u32)ctx->id;
		st->sc_nr = nr;
		st->sc_args[0] = BPF_CORE_READ(regs, di);
		st->sc_args[1] = BPF_CORE_READ(regs, si);
		st->sc_args[2] = BPF_CORE_READ(regs, dx);
		st->sc_args[3] = BPF_CORE_READ(regs, r10);
		st->sc_args[4] = BPF_CORE_READ(regs, r8);
		st->sc_args[5] = BPF_CORE_READ(regs, r9);
		fdi = fd_arg(nr);
		st->sc_fd_mode = 0;
		st->sc_fd_flags = 0;
		if (fdi >= 0)
			fd_info((int)st->sc_args[fdi & 1], &st->sc_fd_mode, &st->sc_fd_flags);
		if (!worth_tracing(nr, (const unsigned long *)st->sc_args, st->sc_fd_mode,
				   st->sc_fd_flags))
			return 0;
	} else {
		nr = st->sc_nr;
		if (nr != (__u32)ctx->id)
			return 0;
	}
	/* pipes, ttys and blocking sockets' waits: only when the call really waited */
	if (st->sc_fd_mode && !is_disk(st->sc_fd_mode) &&
	    (st->sc_fd_mode & S_IFMT) != S_IFSOCK && duration < slow_wait_ns)
		return 0;
	if ((nr == NR_poll || nr == NR_ppoll || nr == NR_select || nr == NR_pselect6) &&
	    duration < slow_wait_ns)
		return 0;
	fdi = fd_arg(nr);
	fd = fdi >= 0 ? st->sc_args[fdi & 1] : ~0ull;
	if (duration < slow_syscall_ns) {
		/* a loop of small reads is one operation: fold it into its first record */
		if (fdi >= 0 && nr == st->last_nr && fd == st->last_fd) {
			st->folded++;
			st->folded_ns += duration;
			return 0;
		}
		if (st->cb_blocking >= max_records_per_callback) {
			count_lost(LOST_CALLBACK_CAP);
			return 0;
		}
	}
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return 0;
	ensure_ident(cfg, st, tid);
	ev = blocking_reserve(st, pid, tid, st->sc_start_ns, SOURCE_SYSCALL);
	if (!ev)
		return 0;
	ev->duration_ns = duration;
	ev->nr = nr;
	ev->ret = ctx->ret;
	for (int i = 0; i < 6; i++)
		ev->args[i] = st->sc_args[i];
	ev->fd_mode = st->sc_fd_mode;
	ev->fd_flags = st->sc_fd_flags;
	fill_operand(ev, nr);
	submit_operation(cfg, st, tid, ev, nr, fd);
	return 0;
}

/* Placeholder sections: user space attaches these to every syscall it traces. */
SEC("tp/syscalls/sys_enter_read")
int syscall_enter(struct trace_event_raw_sys_enter *ctx)
{
	return sys_enter(ctx);
}

SEC("tp/syscalls/sys_exit_read")
int syscall_exit(struct trace_event_raw_sys_exit *ctx)
{
	return sys_exit(ctx);
}
