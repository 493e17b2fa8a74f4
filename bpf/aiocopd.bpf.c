// SPDX-License-Identifier: GPL-2.0
/*
 * aiocopd's BPF programs: loop discovery and iteration boundaries (epoll syscalls), callback
 * boundaries (uprobe on CPython's Context.run), blocking operations inside a callback
 * (per-syscall tracepoints and a uprobe on the audit entry point), on/off-CPU accounting
 * (sched_switch) and callback identification from a low-rate CPU-clock sample.
 *
 * One loaded object serves every monitored process: targets are keyed by tgid and threads by
 * tid. Records go to one ring buffer without wakeups; user space drains it on a timer.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>
#include "aiocopd.h"
#include "syscall_nr.h"
#include "pyread.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define S_IFMT		00170000
#define S_IFSOCK	0140000
#define S_IFREG		0100000
#define S_IFBLK		0060000
#define O_NONBLOCK	00004000
#define MSG_DONTWAIT	0x40
#define CLONE_THREAD	0x00010000
#define AT_EMPTY_PATH	0x1000
#define SIGSTOP		19
#define SLOW_WAIT_NS	1000000ULL	/* pipes and ttys count only when they waited this long */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_TARGETS);
	__type(key, __u32);
	__type(value, struct target_cfg);
} targets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct callback_ident);
} idents SEC(".maps");

/* Audit event names worth a record; filled by user space from its classification table. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, char[AIOCOPD_AUDIT_KEY_LEN]);
	__type(value, __u32);
} audit_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

/* Records that could not be reserved, per CPU; user space reports the sum. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Per loop thread statistics for trace and exec (TARGET_STATS). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct loop_stats);
} loop_stats SEC(".maps");

/* Processes `aiocopd exec` follows (FAMILY_*), keyed by tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AIOCOPD_MAX_TARGETS);
	__type(key, __u32);
	__type(value, __u32);
} family SEC(".maps");

static __always_inline void count_lost(__u32 why)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &why);

	if (n)
		(*n)++;
}

/*
 * Whether a record of this type wakes user space. Most wait for its drain timer: on this
 * kind of VM a wakeup is an IPI that costs microseconds, too much for every record.
 */
static __always_inline __u64 wakeup_flag(__u32 type)
{
	switch (type) {
	case EVENT_CALLBACK:
		/*
		 * Reports are rare, and user space needs the target alive to name their
		 * frames: a process that exits right after its slow callback must not
		 * outrun the drain timer.
		 */
		return BPF_RB_FORCE_WAKEUP;
	case EVENT_EXEC:
	case EVENT_ENTRY:
	case EVENT_FORK:
		return BPF_RB_FORCE_WAKEUP;	/* user space holds the process stopped */
	case EVENT_LOOP_THREAD:
		return 0;	/* once per thread: wake user space only if it is idle */
	}
	return BPF_RB_NO_WAKEUP;
}

/* A record of size bytes with its header filled in, or NULL (counted as lost). */
static __always_inline void *record_reserve(__u64 size, __u32 type, __u32 pid, __u32 tid,
					    __u64 ts)
{
	struct event_header *h = bpf_ringbuf_reserve(&events, size, 0);

	if (!h) {
		count_lost(LOST_RING_BUFFER);
		return NULL;
	}
	h->type = type;
	h->pid = pid;
	h->tid = tid;
	h->pad = 0;
	h->ts_ns = ts;
	return h;
}

static __always_inline void record_submit(void *rec)
{
	const struct event_header *h = rec;

	bpf_ringbuf_submit(rec, wakeup_flag(h->type));
}

static __always_inline struct thread_state *current_thread(__u32 *tid, __u32 *pid)
{
	__u64 id = bpf_get_current_pid_tgid();

	*tid = (__u32)id;
	*pid = id >> 32;
	return bpf_map_lookup_elem(&threads, tid);
}

static __always_inline void ensure_ident(const struct target_cfg *cfg, struct thread_state *st,
					 __u32 tid)
{
	struct callback_ident *id;

	if (!(st->flags & THREAD_IN_CALLBACK) ||
	    (st->flags & (THREAD_IDENT_DONE | THREAD_ITERATION)))
		return;
	id = bpf_map_lookup_elem(&idents, &tid);
	if (!id)
		return;
	capture_ident(cfg, st->cb_args, id);
	st->flags |= THREAD_IDENT_DONE;
}

/* A blocking record with what every source fills; the caller adds what it knows. */
static __always_inline struct event_blocking *blocking_reserve(const struct thread_state *st,
							       __u32 pid, __u32 tid, __u64 ts,
							       __u32 source)
{
	struct event_blocking *ev;

	ev = record_reserve(sizeof(*ev), EVENT_BLOCKING, pid, tid, ts);
	if (!ev)
		return NULL;
	ev->cb_seq = st->cb_seq;
	ev->duration_ns = 0;
	ev->source = source;
	ev->nr = 0;
	ev->ret = 0;
	ev->fd_mode = 0;
	ev->fd_flags = 0;
	ev->n_str = 0;
	ev->str[0] = 0;
	ev->folded_ns = 0;
	ev->folded = 0;
	ev->pad = 0;
	return ev;
}

/* Unarmed: name the callback of a long iteration from the stack just walked. */
static __always_inline void ensure_iteration_ident(const struct target_cfg *cfg,
						   struct thread_state *st, __u32 tid,
						   __u32 n_frames)
{
	struct callback_ident *id;

	if (!(st->flags & THREAD_ITERATION) || (st->flags & THREAD_IDENT_DONE) || !n_frames)
		return;
	id = bpf_map_lookup_elem(&idents, &tid);
	if (id && ident_from_stack(cfg, n_frames, id) == 0)
		st->flags |= THREAD_IDENT_DONE;
}

/* The Python stack of a record, and (unarmed) the callback it names. */
static __always_inline void fill_stack(const struct target_cfg *cfg, struct thread_state *st,
				       __u32 tid, struct event_blocking *ev)
{
	__u64 tstate = current_thread_state(cfg, st, tid);

	ev->n_frames = tstate ? walk_stack(cfg, tstate, ev->frames) : 0;
	ensure_iteration_ident(cfg, st, tid, ev->n_frames);
}

/*
 * An operation record (a syscall or an audit event, not a sample) is complete: it gets its
 * stack and the fast repeats folded into the record before it, becomes the record later
 * repeats fold into, and counts against the callback's cap.
 */
static __always_inline void submit_operation(const struct target_cfg *cfg,
					     struct thread_state *st, __u32 tid,
					     struct event_blocking *ev, __u32 nr, __u64 fd)
{
	fill_stack(cfg, st, tid, ev);
	ev->folded_ns = st->folded_ns;
	ev->folded = st->folded;
	st->folded_ns = 0;
	st->folded = 0;
	st->last_nr = nr;
	st->last_fd = fd;
	st->cb_blocking++;
	record_submit(ev);
}

/* ---- callback boundaries --------------------------------------------------------------- */

static __always_inline void close_callback(const struct target_cfg *cfg, struct thread_state *st,
					   __u32 pid, __u32 tid, __u64 now)
{
	struct event_callback *ev;
	struct callback_ident *id;
	__u64 elapsed;

	__u32 scope = st->flags & THREAD_ITERATION ? SCOPE_ITERATION : SCOPE_CALLBACK;

	if (!(st->flags & THREAD_IN_CALLBACK))
		return;
	st->flags &= ~(THREAD_IN_CALLBACK | THREAD_IDENT_DONE | THREAD_ITERATION);
	st->cb_oncpu_ns += now - st->last_on_ns;
	elapsed = now - st->cb_start_ns;
	if (elapsed < cfg->threshold_ns &&
	    !(scope == SCOPE_CALLBACK && (cfg->flags & TARGET_REPORT_ALL) && st->cb_blocking))
		return;
	ev = record_reserve(sizeof(*ev), EVENT_CALLBACK, pid, tid, st->cb_start_ns);
	if (!ev)
		return;
	ev->cb_seq = st->cb_seq;
	ev->duration_ns = elapsed;
	ev->oncpu_ns = st->cb_oncpu_ns;
	ev->n_blocking = st->cb_blocking;
	ev->scope = scope;
	ev->pad = 0;
	ev->gc_ns = st->cb_gc_ns;
	ev->folded_ns = st->folded_ns;
	ev->folded = st->folded;
	ev->pad2 = 0;
	id = bpf_map_lookup_elem(&idents, &tid);
	ev->ident_valid = id && id->callable;
	if (id)
		__builtin_memcpy(&ev->ident, id, sizeof(*id));
	else
		__builtin_memset(&ev->ident, 0, sizeof(ev->ident));
	record_submit(ev);
}

static __always_inline void open_scope(struct thread_state *st, __u64 now, __u64 args,
				       __u32 iteration)
{
	st->flags |= THREAD_IN_CALLBACK | iteration;
	st->cb_seq++;
	st->cb_start_ns = now;
	st->cb_args = args;
	st->cb_oncpu_ns = 0;
	st->last_on_ns = now;
	st->cb_blocking = 0;
	st->cb_samples = 0;
	st->cb_gc_ns = 0;
	st->last_nr = 0;
	st->folded = 0;
	st->folded_ns = 0;
}

static __always_inline void forget_ident(__u32 tid)
{
	struct callback_ident *id = bpf_map_lookup_elem(&idents, &tid);

	if (id)
		id->callable = 0;
}

/* The calling thread's state and its target's configuration, if it is a loop thread. */
static __always_inline struct thread_state *loop_thread(__u32 *tid, __u32 *pid,
							struct target_cfg **cfg)
{
	struct thread_state *st = current_thread(tid, pid);

	if (!st || !(st->flags & THREAD_LOOP))
		return NULL;
	*cfg = bpf_map_lookup_elem(&targets, pid);
	return *cfg ? st : NULL;
}

/* A loop thread starts a callback: the previous one (or the iteration) ends here. */
static __always_inline int start_callback(const struct target_cfg *cfg, struct thread_state *st,
					  __u32 pid, __u32 tid, __u64 args)
{
	__u64 now = bpf_ktime_get_ns();

	close_callback(cfg, st, pid, tid, now);
	open_scope(st, now, args, 0);
	forget_ident(tid);
	if (cfg->flags & TARGET_STATS) {
		struct loop_stats *ls = bpf_map_lookup_elem(&loop_stats, &tid);

		if (ls)
			ls->callbacks++;
		st->iter_callbacks++;
	}
	return 0;
}

/*
 * Every asyncio callback runs through Context.run (context_run in Python/context.c). A
 * callback ends where the next one starts or where the loop goes back to epoll_wait, so the
 * entry alone is enough: it costs one uprobe per callback instead of a uprobe/uretprobe pair.
 * Even so a uprobe costs about as much as the emptiest task step, so user space attaches
 * this only once a target has shown a slow iteration ("armed"), or for --all.
 */
SEC("uprobe")
int BPF_KPROBE(context_run_entry, void *self, __u64 args)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;

	st = loop_thread(&tid, &pid, &cfg);
	return st ? start_callback(cfg, st, pid, tid, args) : 0;
}

/*
 * Whether obj is the uvloop handle entering context: its type is named type_name and its
 * context slot holds this very context, so a stale or unrelated register cannot pass.
 * Returns where the handle keeps its callable, or 0.
 */
static __always_inline __u64 uvloop_handle_callable(const struct py_layout *l, __u64 obj,
						    __u64 context)
{
	char name[AIOCOPD_TYPE_LEN] = {};
	__u32 cb_type = 0;

	if (!obj || (obj & 7) || read_type_name(l, obj, name, sizeof(name)))
		return 0;
	if (name_is(name, "uvloop.loop.Handle", 19) &&
	    read_ptr(obj + UVLOOP_HANDLE_CONTEXT) == context) {
		/* cb_type 1: a Python callable; the others are uvloop's own C callbacks */
		bpf_probe_read_user(&cb_type, sizeof(cb_type),
				    (const void *)(obj + UVLOOP_HANDLE_CB_TYPE));
		return cb_type == 1 ? obj + UVLOOP_HANDLE_CALLABLE : 0;
	}
	if (name_is(name, "uvloop.loop.TimerHandle", 24) &&
	    read_ptr(obj + UVLOOP_TIMER_CONTEXT) == context)
		return obj + UVLOOP_TIMER_CALLABLE;
	return 0;
}

/*
 * uvloop runs each callback from Cython between PyContext_Enter and PyContext_Exit, not
 * through Context.run; asyncio itself never calls the exported PyContext_Enter. The handle
 * is not an argument, but Handle._run needs it after the call, so the compiler keeps it in a
 * callee-saved register: those still hold the caller's values at this entry.
 */
SEC("uprobe")
int BPF_KPROBE(context_enter_entry, void *context)
{
	__u64 candidates[6] = { ctx->bx, ctx->bp, ctx->r12, ctx->r13, ctx->r14, ctx->r15 };
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;
	__u64 callable = 0;

	st = loop_thread(&tid, &pid, &cfg);
	if (!st)
		return 0;
	for (int i = 0; i < 6 && !callable; i++)
		callable = uvloop_handle_callable(&cfg->layout, candidates[i], (__u64)context);
	return start_callback(cfg, st, pid, tid, callable);
}

/* ---- loop discovery and iteration boundaries ------------------------------------------- */

/* An iteration ends: count it, and give the timeline its slice when it was slow. */
static __always_inline void end_iteration(const struct target_cfg *cfg, struct thread_state *st,
					  __u32 pid, __u32 tid, __u64 now)
{
	struct loop_stats *ls = bpf_map_lookup_elem(&loop_stats, &tid);
	struct event_iteration *ev;
	__u64 busy;

	if (!ls || !st->iter_start_ns || now < st->iter_start_ns)
		return;
	busy = now - st->iter_start_ns;
	ls->iterations++;
	ls->busy_ns += busy;
	if (busy > ls->max_busy_ns)
		ls->max_busy_ns = busy;
	ls->hist[loop_hist_bucket(busy) & (LOOP_HIST_BUCKETS - 1)]++;
	if (busy < cfg->threshold_ns)
		return;
	ev = record_reserve(sizeof(*ev), EVENT_ITERATION, pid, tid, st->iter_start_ns);
	if (!ev)
		return;
	ev->duration_ns = busy;
	ev->callbacks = st->iter_callbacks;
	record_submit(ev);
}

static __always_inline int epoll_enter(void)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;
	__u64 now;

	st = current_thread(&tid, &pid);
	if (!st)
		return 0;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return 0;
	now = bpf_ktime_get_ns();
	close_callback(cfg, st, pid, tid, now);
	if (cfg->flags & TARGET_STATS)
		end_iteration(cfg, st, pid, tid, now);
	st->iter_start_ns = 0;
	return 0;
}

/* Too big for the BPF stack: new entries are copied from this zeroed one. */
static struct loop_stats empty_loop_stats;

static __always_inline void add_loop_stats(__u32 pid, __u32 tid)
{
	struct target_cfg *cfg = bpf_map_lookup_elem(&targets, &pid);
	struct loop_stats *ls;

	if (!cfg || !(cfg->flags & TARGET_STATS))
		return;
	bpf_map_update_elem(&loop_stats, &tid, &empty_loop_stats, BPF_NOEXIST);
	ls = bpf_map_lookup_elem(&loop_stats, &tid);
	if (ls)
		ls->pid = pid;
}

static __always_inline int epoll_exit(void)
{
	struct thread_state *st, fresh = {};
	struct event_loop_thread *ev;
	struct callback_ident empty = {};
	__u32 tid, pid;

	st = current_thread(&tid, &pid);
	if (st) {
		struct target_cfg *cfg = bpf_map_lookup_elem(&targets, &pid);

		__u64 now = bpf_ktime_get_ns();

		st->iter_start_ns = now;
		st->iter_callbacks = 0;
		/* unarmed, the iteration itself is what gets timed */
		if (cfg && !(cfg->flags & TARGET_ARMED)) {
			open_scope(st, now, 0, THREAD_ITERATION);
			forget_ident(tid);
		}
		return 0;
	}
	if (!bpf_map_lookup_elem(&targets, &pid))
		return 0;
	fresh.pid = pid;
	fresh.flags = THREAD_LOOP;
	fresh.iter_start_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&threads, &tid, &fresh, BPF_NOEXIST))
		return 0;
	bpf_map_update_elem(&idents, &tid, &empty, BPF_NOEXIST);
	add_loop_stats(pid, tid);
	ev = record_reserve(sizeof(*ev), EVENT_LOOP_THREAD, pid, tid, bpf_ktime_get_ns());
	if (ev)
		record_submit(ev);
	return 0;
}

SEC("tp/syscalls/sys_enter_epoll_wait")
int epoll_wait_enter(void *ctx) { return epoll_enter(); }
SEC("tp/syscalls/sys_exit_epoll_wait")
int epoll_wait_exit(void *ctx) { return epoll_exit(); }
SEC("tp/syscalls/sys_enter_epoll_pwait")
int epoll_pwait_enter(void *ctx) { return epoll_enter(); }
SEC("tp/syscalls/sys_exit_epoll_pwait")
int epoll_pwait_exit(void *ctx) { return epoll_exit(); }
SEC("tp/syscalls/sys_enter_epoll_pwait2")
int epoll_pwait2_enter(void *ctx) { return epoll_enter(); }
SEC("tp/syscalls/sys_exit_epoll_pwait2")
int epoll_pwait2_exit(void *ctx) { return epoll_exit(); }

/* ---- blocking syscalls ----------------------------------------------------------------- */

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

		if (duration < SLOW_SYSCALL_NS)
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
	    (st->sc_fd_mode & S_IFMT) != S_IFSOCK && duration < SLOW_WAIT_NS)
		return 0;
	if ((nr == NR_poll || nr == NR_ppoll || nr == NR_select || nr == NR_pselect6) &&
	    duration < SLOW_WAIT_NS)
		return 0;
	fdi = fd_arg(nr);
	fd = fdi >= 0 ? st->sc_args[fdi & 1] : ~0ull;
	if (duration < SLOW_SYSCALL_NS) {
		/* a loop of small reads is one operation: fold it into its first record */
		if (fdi >= 0 && nr == st->last_nr && fd == st->last_fd) {
			st->folded++;
			st->folded_ns += duration;
			return 0;
		}
		if (st->cb_blocking >= MAX_RECORDS_PER_CALLBACK) {
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

/*
 * One program for every traced syscall's entry and one for every exit: loaded (and verified)
 * once, attached by user space to each syscalls/sys_{enter,exit}_NAME tracepoint it lists.
 */
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

/* ---- Python-level operations: audit events ---------------------------------------------- */

static __always_inline void render_audit_arg(const struct py_layout *l, char fmt, __u64 val,
					     char *buf, __u32 len)
{
	__u64 v[1] = { val };

	buf[0] = 0;
	switch (fmt) {
	case 'O': case 'N':
		render_pyobj(l, val, buf, len);
		break;
	case 's': case 'y': case 'z':
		if (val)
			bpf_probe_read_user_str(buf, len, (const void *)val);
		break;
	case 'i': case 'n': case 'l': case 'L': case 'k': case 'K':
		bpf_snprintf(buf, len, "%lld", v, sizeof(v));
		break;
	}
}

static __always_inline int audit_common(struct pt_regs *ctx, const char *name, const char *format,
					__u64 va0, __u64 va1, __u64 va2)
{
	char key[AIOCOPD_AUDIT_KEY_LEN] = {};
	char fmt[4] = {};
	struct target_cfg *cfg;
	struct thread_state *st;
	struct event_blocking *ev;
	__u32 tid, pid;
	__u64 va[3] = { va0, va1, va2 };

	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_CALLBACK))
		return 0;
	if (bpf_probe_read_user_str(key, sizeof(key), name) <= 0 ||
	    !bpf_map_lookup_elem(&audit_names, key))
		return 0;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return 0;
	ensure_ident(cfg, st, tid);
	ev = blocking_reserve(st, pid, tid, bpf_ktime_get_ns(), SOURCE_AUDIT);
	if (!ev)
		return 0;
	for (int i = 0; i < 6; i++)
		ev->args[i] = i < 3 ? va[i] : 0;
	__builtin_memcpy(ev->str, key, sizeof(key));
	ev->n_str = sizeof(key);
	if (format)
		bpf_probe_read_user(fmt, sizeof(fmt) - 1, format);
	for (int i = 0; i < 3; i++) {
		char f = fmt[i];

		if (!f) {
			for (int j = i; j < 3; j++)
				ev->arg_text[j][0] = 0;
			break;
		}
		render_audit_arg(&cfg->layout, f, va[i], ev->arg_text[i], AIOCOPD_NAME_LEN);
	}
	submit_operation(cfg, st, tid, ev, 0, 0);
	return 0;
}

/* PySys_Audit(const char *event, const char *format, ...): names every Python-level operation. */
SEC("uprobe")
int BPF_KPROBE(audit_entry, const char *name, const char *format)
{
	return audit_common(ctx, name, format, PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx),
			    PT_REGS_PARM5(ctx));
}

/* _PySys_Audit(PyThreadState *, const char *event, const char *format, ...): CPython's own
 * callers use this one and bypass PySys_Audit. */
SEC("uprobe")
int BPF_KPROBE(audit_tstate_entry, void *tstate, const char *name, const char *format)
{
	return audit_common(ctx, name, format, PT_REGS_PARM4(ctx), PT_REGS_PARM5(ctx),
			    BPF_CORE_READ(ctx, r9));	/* the sixth argument register */
}

/* ---- garbage collection inside a callback ----------------------------------------------- */

static __always_inline int gc_begin(void)
{
	struct thread_state *st;
	__u32 tid, pid;

	st = current_thread(&tid, &pid);
	if (st && (st->flags & THREAD_IN_CALLBACK))
		st->gc_start_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int gc_end(void)
{
	struct thread_state *st;
	__u32 tid, pid;

	st = current_thread(&tid, &pid);
	if (!st || !st->gc_start_ns)
		return 0;
	if (st->flags & THREAD_IN_CALLBACK)
		st->cb_gc_ns += bpf_ktime_get_ns() - st->gc_start_ns;
	st->gc_start_ns = 0;
	return 0;
}

/* gc_collect_main, where the build's symbols or debug file name it */
SEC("uprobe")
int gc_collect_entry(struct pt_regs *ctx) { return gc_begin(); }
SEC("uretprobe")
int gc_collect_return(struct pt_regs *ctx) { return gc_end(); }

/* the gc__start/gc__done USDT probes of distribution builds without symbols */
SEC("usdt")
int gc_start_usdt(struct pt_regs *ctx) { return gc_begin(); }
SEC("usdt")
int gc_done_usdt(struct pt_regs *ctx) { return gc_end(); }

/* ---- scheduler: on-CPU time, and identity of callbacks that get switched out ------------ */

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 prev_tid = prev->pid, next_tid = next->pid;
	struct thread_state *st;
	__u64 now = 0;

	st = bpf_map_lookup_elem(&threads, &prev_tid);
	if (st && (st->flags & THREAD_IN_CALLBACK)) {
		struct target_cfg *cfg = bpf_map_lookup_elem(&targets, &st->pid);

		now = bpf_ktime_get_ns();
		st->cb_oncpu_ns += now - st->last_on_ns;
		/* still current here, so its memory is readable */
		if (cfg)
			ensure_ident(cfg, st, prev_tid);
	}
	st = bpf_map_lookup_elem(&threads, &next_tid);
	if (st)
		st->last_on_ns = now ? now : bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *task)
{
	__u32 tid = task->pid;

	if (bpf_map_delete_elem(&threads, &tid) == 0)
		bpf_map_delete_elem(&idents, &tid);
	if (task->pid == task->tgid)
		bpf_map_delete_elem(&family, &tid);
	return 0;
}

/* ---- the processes `aiocopd exec` follows --------------------------------------------- */

static __always_inline void emit_process(__u32 type, __u32 pid, __u32 parent)
{
	struct event_process *ev;

	ev = record_reserve(sizeof(*ev), type, pid, pid, bpf_ktime_get_ns());
	if (!ev)
		return;
	ev->parent = parent;
	ev->pad = 0;
	record_submit(ev);
}

/*
 * A new process of the family joins it. A fork of a target runs the same interpreter at the
 * same addresses, so it is a target at once, unarmed until user space attaches its uprobes.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, pid = child->pid, member = FAMILY_MEMBER;
	struct target_cfg *cfg, copy;

	if (child->tgid != child->pid || !bpf_map_lookup_elem(&family, &ptgid))
		return 0;
	bpf_map_update_elem(&family, &pid, &member, BPF_ANY);
	cfg = bpf_map_lookup_elem(&targets, &ptgid);
	if (!cfg)
		return 0;
	__builtin_memcpy(&copy, cfg, sizeof(copy));
	copy.flags &= ~TARGET_ARMED;
	bpf_map_update_elem(&targets, &pid, &copy, BPF_ANY);
	emit_process(EVENT_FORK, pid, ptgid);
	return 0;
}

/*
 * A family process replaced its program. Stop it before its first instruction: user space
 * puts a probe on its entry point, where the libraries it needs (libpython) are mapped.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 *flags = bpf_map_lookup_elem(&family, &pid);

	if (!flags)
		return 0;
	*flags |= FAMILY_AWAIT_ENTRY;
	bpf_map_delete_elem(&targets, &pid);	/* the old image's layout means nothing now */
	bpf_send_signal(SIGSTOP);
	emit_process(EVENT_EXEC, pid, 0);
	return 0;
}

/* Attached to one exec'd process at its ELF entry point: stop it there once. */
SEC("uprobe")
int process_entry(struct pt_regs *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 *flags = bpf_map_lookup_elem(&family, &pid);

	if (!flags || !(*flags & FAMILY_AWAIT_ENTRY))
		return 0;
	*flags &= ~FAMILY_AWAIT_ENTRY;
	bpf_send_signal(SIGSTOP);
	emit_process(EVENT_ENTRY, pid, 0);
	return 0;
}

#define MAX_SAMPLES_PER_SCOPE	48	/* user space keeps 64 records per callback */

static __always_inline void emit_sample(const struct target_cfg *cfg, struct thread_state *st,
					__u32 pid, __u32 tid, __u64 now)
{
	struct event_blocking *ev;

	ev = blocking_reserve(st, pid, tid, now, SOURCE_SAMPLE);
	if (!ev)
		return;
	fill_stack(cfg, st, tid, ev);
	st->cb_samples++;
	record_submit(ev);
}

/*
 * A CPU-clock sample on a loop thread: identifies the running callback, and once it has run
 * for half the threshold records its stack, so a CPU-bound slow callback shows where its
 * time went. Short callbacks cost one map lookup per sample.
 */
SEC("perf_event")
int cpu_sample(struct bpf_perf_event_data *ctx)
{
	struct target_cfg *cfg;
	struct thread_state *st;
	__u32 tid, pid;
	__u64 now;

	st = current_thread(&tid, &pid);
	if (!st || !(st->flags & THREAD_IN_CALLBACK))
		return 0;
	cfg = bpf_map_lookup_elem(&targets, &pid);
	if (!cfg)
		return 0;
	ensure_ident(cfg, st, tid);
	/* only a callback (or iteration) already running long is worth a stack */
	now = bpf_ktime_get_ns();
	if (now - st->cb_start_ns >= cfg->sample_after_ns &&
	    st->cb_samples < MAX_SAMPLES_PER_SCOPE)
		emit_sample(cfg, st, pid, tid, now);
	return 0;
}
