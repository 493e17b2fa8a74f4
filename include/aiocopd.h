/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Structures shared by the BPF programs (bpf/) and the user-space daemon: the per-target
 * configuration, the per-thread state, the ring-buffer records, and the defaults of the
 * limits the loader hands to BPF. Everything here is plain fixed-size C so both sides
 * agree on the layout.
 */
#ifndef AIOCOPD_H
#define AIOCOPD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define AIOCOPD_MAX_FRAMES	64	/* hard cap of --trace-depth */
#define AIOCOPD_NAME_LEN	64	/* task names, qualnames, audit event names */
#define AIOCOPD_TYPE_LEN	32	/* Python type names */
#define AIOCOPD_STR_LEN		160	/* paths and rendered audit arguments */
#define AIOCOPD_AUDIT_KEY_LEN	32	/* key of the audit-name filter map */
#define AIOCOPD_MAX_TARGETS	1024
#define AIOCOPD_MAX_THREADS	8192
#define AIOCOPD_MAX_LOOPS	1024	/* loop threads with statistics */

/* Thread flags (struct thread_state.flags). */
#define THREAD_LOOP		(1u << 0)	/* seen waiting in epoll_wait/epoll_pwait */
#define THREAD_IN_CALLBACK	(1u << 1)	/* between a Context.run entry and the next boundary */
#define THREAD_IDENT_DONE	(1u << 2)	/* identity of the running callback captured */
#define THREAD_IN_SYSCALL	(1u << 3)	/* a traced syscall is in flight */
#define THREAD_ITERATION	(1u << 4)	/* the open "callback" is a whole loop iteration */
#define THREAD_ITER_SLOW	(1u << 5)	/* a scope of this iteration was slow by itself */

/* Target flags (struct target_cfg.flags). */
#define TARGET_REPORT_ALL	(1u << 0)	/* --all: also fast callbacks that blocked */
#define TARGET_ARMED		(1u << 1)	/* Context.run is probed: callbacks are exact */
#define TARGET_STATS		(1u << 2)	/* trace, exec: loop statistics, slow iterations */

/* Process flags (map "family", keyed by tgid): exec follows what its command starts. */
#define FAMILY_MEMBER		(1u << 0)	/* started by the command under `aiocopd exec` */
#define FAMILY_AWAIT_ENTRY	(1u << 1)	/* stopped at exec, next stop at its entry point */
#define FAMILY_EXECS_ONLY	(1u << 2)	/* a -p target: its execs are followed, not its forks */
#define FAMILY_UNHELD		(1u << 3)	/* a service target: forks join, execs are seen, none held */

/*
 * Loop iteration busy times are counted in a log-linear histogram: 1 us buckets below 16 us,
 * then 4 buckets per power of two (at most 25% wide); the last one holds
 * everything from about an hour on.
 */
#define LOOP_HIST_BUCKETS	128

/*
 * uvloop's Cython handles (as laid out by uvloop 0.17): where they keep their context and callable.
 * The BPF side checks the type name and the context before trusting either.
 */
#define UVLOOP_HANDLE_CONTEXT	32	/* Handle.context */
#define UVLOOP_HANDLE_CB_TYPE	56	/* Handle.cb_type */
#define UVLOOP_HANDLE_CALLABLE	72	/* Handle.arg1: the callable when cb_type is 1 */
#define UVLOOP_TIMER_CALLABLE	24	/* TimerHandle.callback */
#define UVLOOP_TIMER_CONTEXT	64	/* TimerHandle.context */

/*
 * Defaults of the limits the loader (src/probes.c) sets in the BPF object's read-only data
 * before loading it; the programs (bpf/syscall.bpf.c, bpf/sched.bpf.c) read them as
 * constants.
 */
/* Unarmed, only syscalls that lasted this long are recorded (with their stack). */
#define AIOCOPD_SLOW_SYSCALL_NS		1000000ULL
/* Pipes, ttys and poll/select count only when they waited this long: else they did not. */
#define AIOCOPD_SLOW_WAIT_NS		1000000ULL
/* Past this many records in one callback, only slow syscalls and audit events are recorded. */
#define AIOCOPD_MAX_RECORDS_PER_CALLBACK	128
/* CPU-sample stacks recorded per callback or iteration. */
#define AIOCOPD_MAX_SAMPLES_PER_SCOPE	48

/* Records user space keeps per callback (src/records.c), samples included; the rest are counted. */
#define AIOCOPD_MAX_PENDING		64

_Static_assert(AIOCOPD_MAX_SAMPLES_PER_SCOPE < AIOCOPD_MAX_PENDING,
	       "a callback's samples must leave user space room for its operations");
_Static_assert(AIOCOPD_MAX_RECORDS_PER_CALLBACK >= AIOCOPD_MAX_PENDING,
	       "BPF must not stop sending records before user space has kept all it can");

/* Indexes of the per-CPU "lost" counters. */
#define LOST_RING_BUFFER	0	/* a record could not be reserved */
#define LOST_CALLBACK_CAP	1	/* over the records-per-callback limit */
#define LOST_TABLE_FULL		2	/* a BPF map had no room: a process or thread unwatched */
#define LOST_KINDS		3

/*
 * What the BPF programs need to know about each traced syscall. Map "syscall_props",
 * indexed by syscall number, filled by the loader from the syscall table
 * (src/syscall_table.c). Argument numbers count from 1, as in the syscall's signature,
 * so that 0 means "none".
 */
#define AIOCOPD_SYSCALL_SLOTS	512	/* above every x86-64 syscall number */

#define SC_FD_WAIT		(1u << 0)	/* poll, select: only a long wait counts */
#define SC_SKIP_ZERO		(1u << 1)	/* cannot block when the skip argument is 0 */
#define SC_SKIP_INDIRECT	(1u << 2)	/* the skip argument points at the flags */
#define SC_OPERAND_AT_ENTRY	(1u << 3)	/* the kernel rewrites the operand: copy it early */
#define SC_OPERAND_TIMEVAL	(1u << 4)	/* the operand is a timeval (select), not a timespec */
#define SC_POLL_ONE_FD		(1u << 5)	/* poll: arg 1 points at pollfds, arg 2 counts them */

struct syscall_props {
	__u8 flags;			/* SC_* */
	__u8 fd_arg;			/* the fd whose file decides whether it can block */
	__u8 path_arg;			/* a path worth copying into the record */
	__u8 operand_arg;		/* else a sockaddr or timespec worth copying */
	__u8 skip_arg;			/* the call cannot block when it has skip_mask bits */
	__u8 pad[3];
	__u64 skip_mask;
};

/* What every CPython object says of itself, in every supported version. */
#define PY_OBJECT_TYPE			8		/* PyObject.ob_type */
#define Py_TPFLAGS_LONG_SUBCLASS	(1UL << 24)	/* PyTypeObject.tp_flags: an int */
#define Py_TPFLAGS_LIST_SUBCLASS	(1UL << 25)	/* a list */
#define Py_TPFLAGS_TUPLE_SUBCLASS	(1UL << 26)	/* a tuple */
#define Py_TPFLAGS_BYTES_SUBCLASS	(1UL << 27)	/* a bytes object */
#define Py_TPFLAGS_UNICODE_SUBCLASS	(1UL << 28)	/* a str */
#define PY_TUPLE_FIRST_ITEM		24		/* PyTupleObject.ob_item[0] */
#define PY_LIST_ITEMS			24		/* PyListObject.ob_item: the array */
#define PY_VAR_SIZE			16		/* PyVarObject.ob_size */
#define PY_LONG_DIGIT_MASK		0x3fffffffu	/* a PyLong digit holds 30 bits */
/*
 * 3.14+ frames hold _PyStackRef, not PyObject *: a pointer whose low bits are tags (3.14 one
 * bit, 3.15 two). Objects are at least 8-aligned, so clearing three bits loses nothing of
 * an untagged pointer of older versions either.
 */
#define PY_STACKREF_TAGS		7ULL

/*
 * Where CPython keeps what the BPF side reads, for one interpreter version. Filled by
 * user space from src/pylayout.c; every offset is bounded by the BPF code before use.
 */
struct py_layout {
	__u16 runtime_interp_head;	/* _PyRuntime.interpreters.head */
	__u16 interp_next;		/* PyInterpreterState.next */
	__u16 interp_threads_head;	/* PyInterpreterState.threads.head */
	__u16 tstate_next;		/* PyThreadState.next */
	__u16 tstate_native_tid;	/* PyThreadState.native_thread_id (3.10: .thread_id) */
	__u16 tid_is_pthread;		/* 3.10: that field is pthread_self(), i.e. the FS base */
	__u16 tstate_cframe;		/* PyThreadState.cframe (3.11, 3.12); 0: none */
	__u16 tstate_current_frame;	/* PyThreadState.current_frame (3.13+), used without cframe */
	__u16 cframe_current_frame;	/* _PyCFrame.current_frame */
	__u16 frame_code;		/* _PyInterpreterFrame.f_code / f_executable */
	__u16 frame_previous;		/* _PyInterpreterFrame.previous */
	__u16 frame_instr;		/* _PyInterpreterFrame.prev_instr / instr_ptr */
	__u16 frame_owner;		/* _PyInterpreterFrame.owner */
	__u16 frame_owner_shim;		/* owner values from this one up are shim frames */
	__u16 frame_localsplus;		/* _PyInterpreterFrame.localsplus */
	__u16 type_name;		/* PyTypeObject.tp_name */
	__u16 type_flags;		/* PyTypeObject.tp_flags */
	__u16 type_call;		/* PyTypeObject.tp_call: NULL for what cannot be called */
	__u16 str_state;		/* PyASCIIObject.state */
	__u16 str_ascii_data;		/* sizeof(PyASCIIObject) */
	__u16 str_compact_data;		/* sizeof(PyCompactUnicodeObject) */
	__u16 bytes_data;		/* PyBytesObject.ob_sval */
	__u16 long_digit;		/* PyLongObject.ob_digit (3.11) / long_value.ob_digit */
	__u16 stepwrapper_task;		/* TaskStepMethWrapper.sw_task */
	__u16 cfunc_self;		/* PyCFunctionObject.m_self */
	__u16 method_func;		/* PyMethodObject.im_func */
	__u16 func_qualname;		/* PyFunctionObject.func_qualname */
	__u16 task_coro;		/* TaskObj.task_coro */
	__u16 task_name;		/* TaskObj.task_name */
	__u16 coro_qualname;		/* PyCoroObject.cr_qualname */
	__u16 handle_callback;		/* asyncio Handle._callback slot (slots are sorted) */
	__u16 func_code;		/* PyFunctionObject.func_code */
	__u16 coro_frame;		/* PyCoroObject.cr_iframe, or (3.10) cr_frame */
	__u16 coro_frame_ptr;		/* 3.10: that field points at the frame object */
	__u16 coro_code;		/* 3.10: PyCoroObject.cr_code (a finished one has no frame) */
	__u16 tstate_running_task;	/* 3.14+: the Task _asyncio runs now; 0: not kept */
};

/* One monitored process. Map "targets", keyed by tgid. */
struct target_cfg {
	__u64 runtime_addr;		/* address of _PyRuntime in the target */
	__u64 threshold_ns;		/* a callback is slow at or above this */
	__u64 sample_after_ns;		/* unarmed: take stack samples once an iteration is this old */
	__u32 flags;			/* TARGET_* */
	__u32 trace_depth;		/* frames kept per stack, <= AIOCOPD_MAX_FRAMES */
	struct py_layout layout;
};

/*
 * What a Task step was named from: the step wrapper's type, the Task, its name and coroutine
 * objects, the coroutine's qualname object and code (bpf/common.bpf.h, rename_task_step).
 * task 0: nothing kept.
 */
struct named_task {
	__u64 type, task, name, coro, qualname, code;
};

/* Per monitored thread. Map "threads", keyed by tid. */
struct thread_state {
	__u32 pid;
	__u32 flags;			/* THREAD_* */
	__u64 tstate;			/* cached PyThreadState *, 0 until first needed */
	__u64 cb_seq;			/* sequence number of the current callback */
	__u64 cb_start_ns;
	__u64 cb_args;			/* vector of Context.run's arguments: [0] is the callable */
	__u64 cb_oncpu_ns;		/* on-CPU time accumulated by the current callback */
	__u64 last_on_ns;		/* when the thread last went on CPU */
	__u32 cb_blocking;		/* blocking records emitted for the current callback */
	__u32 cb_samples;		/* stack samples emitted for the current iteration */
	__u32 sc_nr;			/* in-flight syscall */
	__u32 iter_callbacks;		/* callbacks started in the current iteration (armed) */
	__u64 sc_start_ns;
	__u64 sc_args[6];
	__u32 sc_fd_mode;		/* i_mode of the fd argument's inode, 0 if none */
	__u32 sc_fd_flags;		/* f_flags of the fd argument's file */
	__u64 sc_operand[2];		/* SC_OPERAND_AT_ENTRY: the timeout as the call began */
	__u64 iter_start_ns;		/* the current loop iteration began (epoll returned) */
	__u32 last_nr;			/* the callback's last syscall record, for folding */
	__u32 folded;			/* repeats of it folded since, not yet reported */
	__u64 last_fd;
	__u64 folded_ns;		/* their time */
	__u64 gc_start_ns;		/* a collection in progress, 0 if none */
	__u64 cb_gc_ns;			/* collection time inside the current callback */
	__u64 cb_omitted_ns;		/* time of the operations not recorded (cap, full ring) */
	__u32 cb_omitted;		/* operations of the current callback not recorded */
	__u32 iter_tops;		/* named callbacks of this iteration kept in map "tops" */
	__u64 runnable_since_ns;	/* switched out while still runnable (preempted); 0: not */
	__u64 cb_preempted_ns;		/* the current callback's time runnable but off CPU */
	__u64 iter_top_min_ns;		/* the shortest of them once there are AIOCOPD_ITER_TOPS */
	__u64 iter_cb_ns;		/* time its callbacks took, together (armed) */
	__u64 last_sample_ns;		/* the last CPU sample that looked at it */
	__u64 base_code;		/* where Context.run is called from (Handle._run): the */
	__u64 base_instr;		/* code and instruction; code 0: not learnt, 1: cannot be */
	struct named_task named;	/* the Task step this thread named last, if any */
};

/* Per loop thread, with TARGET_STATS. Map "loop_stats", keyed by tid. */
struct loop_stats {
	__u32 pid;
	__u32 pad;
	__u64 iterations;		/* timed iterations: epoll return to the next epoll call */
	__u64 busy_ns;
	__u64 max_busy_ns;
	__u64 callbacks;		/* callbacks started while armed */
	__u32 hist[LOOP_HIST_BUCKETS];	/* busy time per iteration, see loop_hist_bucket() */
};

/* The histogram bucket of an iteration that was busy for ns nanoseconds. */
static __always_inline __u32 loop_hist_bucket(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 msb = 0;

	if (us < 16)
		return us;
	if (us >> 32) { msb += 32; us >>= 32; }
	if (us >> 16) { msb += 16; us >>= 16; }
	if (us >> 8) { msb += 8; us >>= 8; }
	if (us >> 4) { msb += 4; us >>= 4; }
	if (us >> 2) { msb += 2; us >>= 2; }
	if (us >> 1) { msb += 1; }
	/* msb >= 4 here; the two bits below the top one pick the quarter */
	us = ns / 1000;
	msb = 16 + (msb - 4) * 4 + ((us >> (msb - 2)) & 3);
	return msb < LOOP_HIST_BUCKETS ? msb : LOOP_HIST_BUCKETS - 1;
}

enum callback_kind {
	CB_UNKNOWN = 0,
	CB_TASK_STEP,			/* TaskStepMethWrapper: Task.__step */
	CB_TASK_WAKEUP,			/* builtin task_wakeup bound to a Task */
	CB_FUNCTION,			/* plain function or method */
	CB_OTHER,			/* some other callable: type name only */
};

/* What a Task's name was when BPF read it. */
enum task_name_kind {
	TASK_NAME_STR = 0,		/* a str, copied into task_name */
	TASK_NAME_INT,			/* 3.12+: stored as its counter, in name_int */
	TASK_NAME_UNKNOWN,		/* not a str or an int, or unreadable: nothing to show */
};

/* Identity of a running callback, captured while it is alive. Map "idents", keyed by tid. */
struct callback_ident {
	__u32 kind;			/* enum callback_kind */
	__u32 name_kind;		/* enum task_name_kind */
	__u64 name_int;
	__u64 callable;
	char type_name[AIOCOPD_TYPE_LEN];
	char task_name[AIOCOPD_NAME_LEN];
	char qualname[AIOCOPD_NAME_LEN];	/* coroutine or callable __qualname__ */
	__u64 code;			/* its code: a Task's coroutine's, a function's; 0: none */
	__u64 instr;			/* where that coroutine was when named; 0: a function */
};

/*
 * Armed, the callbacks that took most of a loop iteration none of them made slow (the loop's
 * lag), kept per loop thread while it runs: the longest of those BPF named, timed exactly.
 */
#define AIOCOPD_ITER_TOPS	3

struct iteration_top {
	__u64 duration_ns;
	struct callback_ident ident;
};

/* Map "tops", keyed by tid; thread_state.iter_tops says how many are this iteration's. */
struct iteration_tops {
	struct iteration_top top[AIOCOPD_ITER_TOPS];
};

enum event_type {
	EVENT_LOOP_THREAD = 1,
	EVENT_BLOCKING,
	EVENT_CALLBACK,
	EVENT_ITERATION,		/* a slow loop iteration (TARGET_STATS) */
	EVENT_EXEC,			/* a family process exec'd: stopped, about to run */
	EVENT_ENTRY,			/* it reached its entry point: stopped, libraries mapped */
	EVENT_FORK,			/* a target forked: the child runs the same interpreter */
	EVENT_THREAD_EXIT,		/* a loop thread exited */
	EVENT_EXIT,			/* the last thread of a target or followed process exited */
	EVENT_FINALIZE,			/* a target entered Py_FinalizeEx: stopped, memory intact */
	EVENT_EXEC_SEEN,		/* `aiocopd service`: a process exec'd, running on (not held) */
};

enum blocking_source {
	SOURCE_SYSCALL = 1,
	SOURCE_AUDIT,
	SOURCE_SAMPLE,			/* a CPU-clock sample: where the time went, not an operation */
};

/* Why a record's stack walk ended: only a whole stack shows where it began. */
enum stack_end {
	STACK_UNREAD = 0,		/* no stack was walked (no thread state found) */
	STACK_WHOLE,			/* the chain of frames ended: every frame is there */
	STACK_CUT,			/* deeper than the trace depth: the innermost frames are there */
	STACK_BROKEN,			/* a frame could not be read: the frames before it are there */
};

enum report_scope {
	SCOPE_CALLBACK = 0,		/* bounded by Context.run: exact */
	SCOPE_ITERATION,		/* bounded by epoll_wait: the whole loop iteration */
};

struct py_frame {
	__u64 code;			/* PyCodeObject * */
	__u64 instr;			/* instruction pointer inside it */
	__u64 addr;			/* the frame itself */
	__u64 first_local;		/* localsplus[0]: "self" of a method */
	__u8 owner;			/* who owns the frame (thread, generator, ...) */
	__u8 pad[7];
};

struct event_header {
	__u32 type;			/* enum event_type */
	__u32 pid;
	__u32 tid;
	__u32 pad;
	__u64 ts_ns;			/* CLOCK_MONOTONIC */
};

struct event_loop_thread {
	struct event_header h;
};

/* A blocking operation inside a callback: one syscall, or one audit event. */
struct event_blocking {
	struct event_header h;		/* ts_ns: start of the operation */
	__u64 cb_seq;
	__u64 duration_ns;
	__u32 source;			/* enum blocking_source */
	__u32 nr;			/* syscall number */
	__s64 ret;
	__u64 args[6];			/* syscall arguments, or audit varargs */
	__u32 fd_mode;
	__u32 fd_flags;
	__u32 n_frames;
	__u32 n_str;
	__u64 folded_ns;		/* fast repeats of the previous syscall record (same call, */
	__u32 folded;			/* same fd) folded into it rather than recorded */
	__u32 stack_end;		/* enum stack_end */
	__s32 fd;			/* the fd acted on, or that a poll of one fd waited for; */
	__u16 peer_family;		/* -1: none. A socket's peer: AF_INET/AF_INET6, 0: none */
	__be16 peer_port;		/* network order, as the kernel keeps it */
	__u8 peer_addr[16];		/* IPv4 in the first 4 bytes */
	char str[AIOCOPD_STR_LEN];	/* path, sockaddr bytes, or audit event name */
	char arg_text[3][AIOCOPD_NAME_LEN];	/* audit arguments rendered as text */
	struct py_frame frames[AIOCOPD_MAX_FRAMES];
};

/* A callback that ended and is worth reporting (slow, or blocked with --all). */
struct event_callback {
	struct event_header h;		/* ts_ns: start of the callback */
	__u64 cb_seq;
	__u64 duration_ns;
	__u64 oncpu_ns;
	__u32 n_blocking;
	__u32 ident_valid;
	__u32 scope;			/* enum report_scope */
	__u32 pad;
	__u64 gc_ns;			/* time spent collecting garbage inside it */
	__u64 folded_ns;		/* repeats folded into its last syscall record */
	__u32 folded;
	__u32 omitted;			/* operations BPF did not record (per-callback cap, full */
	__u64 omitted_ns;		/* ring buffer), and their time */
	__u64 preempted_ns;		/* off CPU while runnable: another task had the CPU */
	struct callback_ident ident;
};

/*
 * A loop iteration at or over the threshold: the timeline's outer slice (TARGET_STATS), and,
 * armed, a slow_iteration report when none of its callbacks was slow by itself (lag).
 */
struct event_iteration {
	struct event_header h;		/* ts_ns: epoll returned */
	__u64 duration_ns;		/* until the next epoll call */
	__u64 callbacks;		/* started in it, while armed */
	__u32 lag;			/* armed: callbacks took it, several, none slow by itself */
	__u32 n_top;			/* valid entries of top, in no order (lag only) */
	struct iteration_top top[AIOCOPD_ITER_TOPS];
};

/* EVENT_EXEC, EVENT_ENTRY, EVENT_FORK, EVENT_EXIT, EVENT_FINALIZE: h.pid is the process;
 * parent: forks only.
 * EVENT_THREAD_EXIT is a bare header. */
struct event_process {
	struct event_header h;
	__u32 parent;
	__u32 pad;
};

#endif /* AIOCOPD_H */
