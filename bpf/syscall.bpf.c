// SPDX-License-Identifier: GPL-2.0
/*
 * Blocking syscalls inside a callback. One program for every traced syscall's entry and one
 * for every exit, loaded (and verified) once and attached by the loader to the
 * syscalls/sys_{enter,exit}_NAME tracepoints of its syscall table, which also fills
 * "syscall_props": which argument is the fd, the path, the address, and when the call
 * cannot block. Unarmed, only calls that took slow_syscall_ns are recorded.
 */
#include "common.bpf.h"

#define S_IFMT		00170000
#define S_IFSOCK	0140000
#define S_IFREG		0100000
#define S_IFBLK		0060000
#define O_NONBLOCK	00004000

/* Set by the loader before load; defaults in include/aiocopd.h. */
const volatile __u64 slow_syscall_ns = AIOCOPD_SLOW_SYSCALL_NS;
const volatile __u64 slow_wait_ns = AIOCOPD_SLOW_WAIT_NS;
const volatile __u32 max_records_per_callback = AIOCOPD_MAX_RECORDS_PER_CALLBACK;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, AIOCOPD_SYSCALL_SLOTS);
	__type(key, __u32);
	__type(value, struct syscall_props);
} syscall_props SEC(".maps");

/* Argument n, counting from 1 as the syscall table does; 0 when there is none. */
static __always_inline __u64 syscall_arg(const __u64 *args, __u32 n)
{
	return n >= 1 && n <= 6 ? args[n - 1] : 0;
}

#define AF_INET		2
#define AF_INET6	10

/* A kernel pointer read as a scalar, made a BTF pointer again (read-only, loads checked). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * The open file behind fd in the current task, NULL if none. The task's fields are read
 * through its BTF pointer, and the file's through one made from the fd table's slot: plain
 * loads instead of a helper call per field (BPF_CORE_READ), which took the armed
 * syscall_enter from 353 to 269 ns mean (docs/PERFORMANCE.md).
 */
static __always_inline struct file *fd_file(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	struct fdtable *fdt = files ? files->fdt : NULL;
	struct file *file = NULL;

	if (!fdt || fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	/* the table is an array of pointers: its slot is read, not loaded */
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return NULL;
	return bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
}

static __always_inline void fd_info(int fd, __u32 *mode, __u32 *flags)
{
	struct file *file = fd_file(fd);
	struct inode *inode;

	*mode = 0;
	*flags = 0;
	if (!file)
		return;
	inode = file->f_inode;
	*mode = inode ? inode->i_mode : 0;
	*flags = file->f_flags;
}

/* The fd whose file the call acts on: its fd argument, or the one fd a poll watches. */
static __always_inline int call_fd(const struct syscall_props *sp, const __u64 *args)
{
	struct pollfd { int fd; short events, revents; } pfd;

	if (sp->fd_arg)
		return (int)syscall_arg(args, sp->fd_arg);
	if (!(sp->flags & SC_POLL_ONE_FD) || args[1] != 1 ||
	    bpf_probe_read_user(&pfd, sizeof(pfd), (const void *)args[0]))
		return -1;
	return pfd.fd;
}

/* An internet socket's peer, so a report can say whom the call waited for. */
static __always_inline void note_peer(struct event_blocking *ev)
{
	struct file *file;
	struct socket *sock;
	struct sock *sk;

	ev->peer_family = 0;
	if ((ev->fd_mode & S_IFMT) != S_IFSOCK || !(file = fd_file(ev->fd)))
		return;
	sock = bpf_rdonly_cast(file->private_data, bpf_core_type_id_kernel(struct socket));
	sk = sock ? sock->sk : NULL;
	if (!sk)
		return;
	ev->peer_family = sk->__sk_common.skc_family;
	ev->peer_port = sk->__sk_common.skc_dport;
	if (ev->peer_family == AF_INET) {
		__u32 a = sk->__sk_common.skc_daddr;

		__builtin_memcpy(ev->peer_addr, &a, sizeof(a));
	} else if (ev->peer_family == AF_INET6) {
		BPF_CORE_READ_INTO(&ev->peer_addr, sk, __sk_common.skc_v6_daddr);
	} else {
		ev->peer_family = 0;	/* a unix socket: its path is the fd's name */
	}
}

static __always_inline int is_disk(__u32 mode)
{
	return (mode & S_IFMT) == S_IFREG || (mode & S_IFMT) == S_IFBLK;
}

/* What the table says makes this call unable to block: MSG_DONTWAIT, a zero timeout, ... */
static __always_inline bool skipped_by_args(const struct syscall_props *sp, const __u64 *args)
{
	__u64 v;

	if (!sp->skip_arg)
		return false;
	v = syscall_arg(args, sp->skip_arg);
	if (sp->flags & SC_SKIP_INDIRECT) {
		__u64 p = v;

		v = 0;
		bpf_probe_read_user(&v, sizeof(v), (const void *)p);
	}
	if (sp->flags & SC_SKIP_ZERO)
		return (v & sp->skip_mask) == 0;
	return (v & sp->skip_mask) != 0;
}

/* Decide at entry whether this call can block at all. */
static __always_inline bool worth_tracing(const struct syscall_props *sp, const __u64 *args,
					  __u32 mode, __u32 flags)
{
	if (sp->fd_arg) {
		if (!mode)
			return false;
		if (!is_disk(mode) && (flags & O_NONBLOCK))
			return false;	/* a non-blocking fd cannot hold the loop */
	}
	return !skipped_by_args(sp, args);
}

/* The file behind the call's fd argument, if it has one. */
static __always_inline void note_fd(const struct syscall_props *sp, struct thread_state *st)
{
	st->sc_fd_mode = 0;
	st->sc_fd_flags = 0;
	if (sp->fd_arg)
		fd_info((int)syscall_arg(st->sc_args, sp->fd_arg), &st->sc_fd_mode,
			&st->sc_fd_flags);
}

/* What the call acted on or waited for, read once the call is worth a record. */
static __always_inline void fill_target(struct event_blocking *ev,
					const struct syscall_props *sp,
					const struct thread_state *st)
{
	__u32 flags;

	ev->fd = call_fd(sp, st->sc_args);
	ev->fd_mode = st->sc_fd_mode;
	ev->fd_flags = st->sc_fd_flags;
	if (!sp->fd_arg && ev->fd >= 0)
		fd_info(ev->fd, &ev->fd_mode, &flags);	/* a poll's fd: kind only */
	note_peer(ev);
}

static __always_inline int sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	const struct syscall_props *sp;
	struct thread_state *st;
	__u32 tid, pid, nr = 0;

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
	sp = bpf_map_lookup_elem(&syscall_props, &nr);
	if (!sp)
		return 0;
	/*
	 * A tracepoint program may not load past its own record, and syscalls with fewer
	 * than six arguments have shorter records: copy instead (unused slots are junk).
	 */
	if (bpf_probe_read_kernel(st->sc_args, sizeof(st->sc_args), ctx->args))
		return 0;
	note_fd(sp, st);
	if (!worth_tracing(sp, st->sc_args, st->sc_fd_mode, st->sc_fd_flags))
		return 0;
	/* select's timeout counts down in place: what the caller asked for is there now only */
	if ((sp->flags & SC_OPERAND_AT_ENTRY) &&
	    bpf_probe_read_user(st->sc_operand, sizeof(st->sc_operand),
				(const void *)syscall_arg(st->sc_args, sp->operand_arg)))
		st->sc_operand[0] = st->sc_operand[1] = ~0ull;	/* unreadable: not a timeout */
	st->flags |= THREAD_IN_SYSCALL;
	st->sc_nr = nr;
	st->sc_start_ns = bpf_ktime_get_ns();
	return 0;
}

/* Unarmed, at the exit of a slow call: what its entry did not look at. */
static __always_inline const struct syscall_props *slow_call(struct thread_state *st, __u32 nr)
{
	const struct syscall_props *sp = bpf_map_lookup_elem(&syscall_props, &nr);
	struct pt_regs *regs;

	if (!sp)
		return NULL;
	/* the saved user registers still hold the arguments */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	st->sc_nr = nr;
	st->sc_args[0] = BPF_CORE_READ(regs, di);
	st->sc_args[1] = BPF_CORE_READ(regs, si);
	st->sc_args[2] = BPF_CORE_READ(regs, dx);
	st->sc_args[3] = BPF_CORE_READ(regs, r10);
	st->sc_args[4] = BPF_CORE_READ(regs, r8);
	st->sc_args[5] = BPF_CORE_READ(regs, r9);
	note_fd(sp, st);
	st->sc_operand[0] = st->sc_operand[1] = ~0ull;	/* counted down by now: unknown */
	return worth_tracing(sp, st->sc_args, st->sc_fd_mode, st->sc_fd_flags) ? sp : NULL;
}

/* Pipes, ttys, blocking sockets' and poll's waits: only when the call really waited. */
static __always_inline bool waited_enough(const struct syscall_props *sp,
					  const struct thread_state *st, __u64 duration)
{
	__u32 kind = st->sc_fd_mode & S_IFMT;

	if (duration >= slow_wait_ns)
		return true;
	if (st->sc_fd_mode && !is_disk(st->sc_fd_mode) && kind != S_IFSOCK)
		return false;
	return !(sp->flags & SC_FD_WAIT);
}

/* Copy what identifies the operation: the path, or the socket address or timespec. */
static __always_inline void fill_operand(struct event_blocking *ev,
					 const struct syscall_props *sp,
					 const struct thread_state *st)
{
	__u64 p;
	int n;

	ev->n_str = 0;
	ev->str[0] = 0;
	if (sp->path_arg) {
		p = syscall_arg(ev->args, sp->path_arg);
		n = bpf_probe_read_user_str(ev->str, sizeof(ev->str), (const void *)p);
		ev->n_str = n > 0 ? n : 0;
		return;
	}
	p = syscall_arg(ev->args, sp->operand_arg);
	if (!p)
		return;
	if (sp->flags & SC_OPERAND_AT_ENTRY) {
		__builtin_memcpy(ev->str, st->sc_operand, sizeof(st->sc_operand));
		ev->n_str = sizeof(st->sc_operand);
	} else if (!bpf_probe_read_user(ev->str, 28, (const void *)p)) {
		ev->n_str = 28;
	}
}

/* Fast calls are folded into the one before or, past the cap, only counted. */
static __always_inline bool keep_fast_call(const struct syscall_props *sp,
					   struct thread_state *st, __u32 nr, __u64 fd,
					   __u64 duration)
{
	/* a loop of small reads is one operation: fold it into its first record */
	if (sp->fd_arg && nr == st->last_nr && fd == st->last_fd) {
		st->folded++;
		st->folded_ns += duration;
		return false;
	}
	if (st->cb_blocking >= max_records_per_callback) {
		count_lost(LOST_CALLBACK_CAP);
		omit_operation(st, duration);
		return false;
	}
	return true;
}

static __always_inline int sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	const struct syscall_props *sp;
	struct event_blocking *ev;
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid, nr;
	__u64 duration, fd;

	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_SYSCALL))
		return 0;
	st->flags &= ~THREAD_IN_SYSCALL;
	if (!(st->flags & THREAD_IN_CALLBACK))
		return 0;
	duration = bpf_ktime_get_ns() - st->sc_start_ns;
	nr = (__u32)ctx->id;
	if (st->flags & THREAD_ITERATION) {
		if (duration < slow_syscall_ns)
			return 0;
		sp = slow_call(st, nr);
	} else {
		sp = nr == st->sc_nr ? bpf_map_lookup_elem(&syscall_props, &nr) : NULL;
	}
	if (!sp || !waited_enough(sp, st, duration))
		return 0;
	fd = sp->fd_arg ? syscall_arg(st->sc_args, sp->fd_arg) : ~0ull;
	if (duration < slow_syscall_ns && !keep_fast_call(sp, st, nr, fd, duration))
		return 0;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return 0;
	ensure_ident(cfg, st, tid);
	ev = blocking_reserve(st, pid, tid, st->sc_start_ns, SOURCE_SYSCALL);
	if (!ev) {
		omit_operation(st, duration);	/* the ring buffer is full */
		return 0;
	}
	ev->duration_ns = duration;
	ev->nr = nr;
	ev->ret = ctx->ret;
	for (int i = 0; i < 6; i++)
		ev->args[i] = st->sc_args[i];
	fill_target(ev, sp, st);
	fill_operand(ev, sp, st);
	submit_operation(cfg, st, tid, ev, nr, fd);
	return 0;
}

SEC("tp")
int syscall_enter(struct trace_event_raw_sys_enter *ctx)
{
	program_begin();
	sys_enter(ctx);
	program_end();
	return 0;
}

SEC("tp")
int syscall_exit(struct trace_event_raw_sys_exit *ctx)
{
	program_begin();
	sys_exit(ctx);
	program_end();
	return 0;
}
