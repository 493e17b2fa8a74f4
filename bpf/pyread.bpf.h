/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Reading CPython objects out of the current task's memory from BPF: thread states, the
 * interpreter frame chain, str/bytes/int objects and the identity of the running callback.
 * Every read goes through bpf_probe_read_user, so a bad pointer only makes a read fail;
 * every loop is bounded.
 */
#ifndef AIOCOPD_PYREAD_BPF_H
#define AIOCOPD_PYREAD_BPF_H

#define MAX_INTERPRETERS	4
#define MAX_THREAD_STATES	128
#define FRAME_WINDOW		104	/* bytes read per frame: covers every field we use */
#define OFF_MASK		0x7f	/* field offsets inside a window stay below 128 + 8 */

struct scratch {
	__u8 win[144];
	/*
	 * Twice the frames kept: the frames a walk reuses are copied in at a variable index
	 * with a variable size, and the verifier checks the largest of both together.
	 */
	struct py_frame frames[2 * AIOCOPD_MAX_FRAMES];
};

/* Per-CPU room for a stack walk, too big for the BPF stack; defined in bpf/maps.bpf.c. */
struct scratch_map {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
};

extern struct scratch_map scratch_map SEC(".maps");

/*
 * The frames below the frame that called Context.run, as the first whole walk of a callback
 * read them (armed). That frame (X) waits in Context.run for the whole callback, so it and
 * every frame below it stay as they were: later walks of the same callback stop at X and
 * copy the rest from here. Keyed by tid; defined in bpf/maps.bpf.c.
 */
struct stack_bottom {
	__u64 cb_seq;			/* the callback the frames were read in */
	__u64 addr;			/* X itself, and its "self": the Handle it runs */
	__u64 first_local;
	__u32 n;			/* frames below X, all of them (the walk was whole) */
	__u32 pad;
	struct py_frame frames[AIOCOPD_MAX_FRAMES];
};

struct stack_bottoms_map {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AIOCOPD_MAX_LOOPS);
	__type(key, __u32);
	__type(value, struct stack_bottom);
};

extern struct stack_bottoms_map stack_bottoms SEC(".maps");

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;

	if (bpf_probe_read_user(&v, sizeof(v), (const void *)addr))
		return 0;
	return v;
}

/*
 * Walks over the thread states of every interpreter, one hop per bpf_loop step, so the
 * verifier checks the step once instead of every path through two nested loops.
 */
struct tstate_walk {
	__u64 interp;
	__u64 ts;
	__u64 found;
	__u64 tid;			/* the thread id CPython stored for this thread */
	__u16 interp_next, threads_head, tstate_next, native_tid;
};

static long tstate_step(__u32 i, struct tstate_walk *w)
{
	if (!w->ts) {
		if (i)	/* this interpreter's list is done: go to the next one */
			w->interp = read_ptr(w->interp + w->interp_next);
		if (!w->interp)
			return 1;
		w->ts = read_ptr(w->interp + w->threads_head);
		return 0;
	}
	if (read_ptr(w->ts + w->native_tid) == w->tid) {
		w->found = w->ts;
		return 1;
	}
	w->ts = read_ptr(w->ts + w->tstate_next);
	return 0;
}


/*
 * The current thread's id as its own PID namespace numbers it (what gettid() returned to
 * it, NSpid's last field): struct pid keeps one number per level, the deepest its own.
 * host_tid when the thread lives in the initial namespace or the numbers cannot be read.
 */
static __always_inline __u32 tid_as_target_sees_it(__u32 host_tid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = pid ? BPF_CORE_READ(pid, level) : 0;
	int nr = 0;

	if (!level || level >= PID_NS_LEVELS)
		return host_tid;
	if (bpf_core_read(&nr, sizeof(nr), &pid->numbers[level].nr) || nr <= 0)
		return host_tid;
	return nr;
}

/*
 * What CPython recorded as this thread's id: its tid as the target sees it (a process in a
 * container records its namespace's ids, never the host's), or (3.10) pthread_self().
 */
static __always_inline __u64 python_thread_id(const struct target_cfg *cfg, __u32 tid)
{
	struct task_struct *task;

	if (!cfg->layout.tid_is_pthread)
		return tid_as_target_sees_it(tid);
	/* glibc's pthread_self() is the thread pointer, the FS base on x86-64 */
	task = (struct task_struct *)bpf_get_current_task();
	return BPF_CORE_READ(task, thread.fsbase);
}

/* Find the PyThreadState of the current thread by walking the runtime's lists. */
static __always_inline __u64 find_thread_state(const struct target_cfg *cfg, __u32 tid)
{
	const struct py_layout *l = &cfg->layout;
	struct tstate_walk w = {
		.interp = read_ptr(cfg->runtime_addr + l->runtime_interp_head),
		.tid = python_thread_id(cfg, tid),
		.interp_next = l->interp_next,
		.threads_head = l->interp_threads_head,
		.tstate_next = l->tstate_next,
		.native_tid = l->tstate_native_tid,
	};

	bpf_loop(MAX_INTERPRETERS * (MAX_THREAD_STATES + 1), tstate_step, &w, 0);
	return w.found;
}

/* The thread state of the current thread, cached in its per-thread entry and re-checked. */
static __always_inline __u64 current_thread_state(const struct target_cfg *cfg,
						  struct thread_state *st, __u32 tid)
{
	if (st->tstate &&
	    read_ptr(st->tstate + cfg->layout.tstate_native_tid) == python_thread_id(cfg, tid))
		return st->tstate;
	st->tstate = find_thread_state(cfg, tid);
	return st->tstate;
}

static __always_inline __u64 current_frame(const struct target_cfg *cfg, __u64 tstate)
{
	__u64 cframe;

	if (!cfg->layout.tstate_cframe)	/* 3.13+: the thread state points at the frame */
		return read_ptr(tstate + cfg->layout.tstate_current_frame);
	cframe = read_ptr(tstate + cfg->layout.tstate_cframe);

	if (!cframe)
		return 0;
	return read_ptr(cframe + cfg->layout.cframe_current_frame);
}

#define NO_FRAME	(~0u)

struct frame_walk {
	__u64 frame;
	__u32 n, depth;
	__u32 broken;			/* a frame's head could not be read */
	__u16 code, previous, instr, owner, owner_shim, localsplus;
	/* where Context.run is called from (thread_state.base_code), 0: not looked for */
	__u64 base_code, base_instr;
	__u64 known_addr, known_first_local;	/* X of the stack_bottom to reuse, if any */
	__u32 base_at;			/* index of the innermost frame at that call, or NO_FRAME */
	__u32 reuse;			/* stopped at the known X: the rest is in stack_bottom */
};

/*
 * One frame per step: one read of the frame's head, fields picked out of the copy. A frame
 * past the depth ends the walk with w->frame still set (the stack was cut); shim frames
 * past it are followed, so a stack of exactly depth frames is still seen whole.
 */
static long frame_step(__u32 i, struct frame_walk *w)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);

	if (!s || !w->frame)
		return 1;
	if (bpf_probe_read_user(s->win, FRAME_WINDOW, (const void *)w->frame)) {
		w->broken = 1;
		return 1;
	}
	if (s->win[w->owner & OFF_MASK] < w->owner_shim) {
		struct py_frame *f = &s->frames[w->n & (AIOCOPD_MAX_FRAMES - 1)];

		if (w->n >= w->depth)
			return 1;
		f->code = *(__u64 *)(s->win + (w->code & OFF_MASK)) & ~PY_STACKREF_TAGS;
		f->instr = *(__u64 *)(s->win + (w->instr & OFF_MASK));
		f->addr = w->frame;
		/* 3.10's frame objects keep their locals far down: handle_step reads them */
		f->first_local = w->localsplus + 8 <= FRAME_WINDOW ?
				 *(__u64 *)(s->win + (w->localsplus & OFF_MASK)) & ~PY_STACKREF_TAGS :
				 0;
		f->owner = s->win[w->owner & OFF_MASK];
		if (w->base_at == NO_FRAME && w->base_code && f->code == w->base_code &&
		    f->instr == w->base_instr) {
			w->base_at = w->n;
			if (f->addr == w->known_addr && f->first_local == w->known_first_local) {
				w->n++;
				w->reuse = 1;
				return 1;
			}
		}
		w->n++;
	}
	w->frame = *(__u64 *)(s->win + (w->previous & OFF_MASK));
	return 0;
}

/* n frames, at most AIOCOPD_MAX_FRAMES, from one of our buffers to another. */
static __always_inline void copy_frames(struct py_frame *to, const struct py_frame *from, __u64 n)
{
	__u64 size = n * sizeof(struct py_frame);

	/* checked on the register passed: clang would drop the check, known from the callers */
	barrier_var(size);
	if (size && size <= AIOCOPD_MAX_FRAMES * sizeof(struct py_frame))
		bpf_probe_read_kernel(to, size, from);
}

/* Scratch frames [at, at + n) from the bottom saved for this callback, as far as depth allows. */
static __always_inline __u32 reuse_bottom(struct scratch *s, const struct stack_bottom *b,
					  __u32 at, __u32 depth, __u32 *end)
{
	__u32 n = b->n;

	if (at >= depth || at >= AIOCOPD_MAX_FRAMES) {
		*end = STACK_CUT;
		return at;
	}
	*end = at + n <= depth ? STACK_WHOLE : STACK_CUT;
	if (n > depth - at)
		n = depth - at;
	copy_frames(&s->frames[at], b->frames, n);
	return at + n;
}

/* Whether the bottom a walk reused is still the one it matched (LRU may take an entry). */
static __always_inline bool bottom_still(const struct stack_bottom *b, const struct frame_walk *w,
					 __u64 cb_seq)
{
	return b->cb_seq == cb_seq && b->addr == w->known_addr &&
	       b->first_local == w->known_first_local;
}

/* Zeroed: a loop thread's entry in map "stack_bottoms" starts as a copy of it. */
static const struct stack_bottom empty_bottom;

/* A whole walk of a callback that met X: keep the frames below X for its later walks. */
static __always_inline void save_bottom(const struct scratch *s, __u32 tid, __u64 cb_seq,
					__u32 base_at, __u32 n)
{
	struct stack_bottom *b;
	__u32 below;

	if (base_at >= n || base_at >= AIOCOPD_MAX_FRAMES)
		return;
	below = n - base_at - 1;
	if (below > AIOCOPD_MAX_FRAMES)
		return;
	/* one entry per loop thread, kept while the thread lives (LRU beyond that) */
	b = map_entry(&stack_bottoms, &tid, &empty_bottom);
	if (!b)
		return;
	b->cb_seq = cb_seq;
	b->addr = s->frames[base_at].addr;
	b->first_local = s->frames[base_at].first_local;
	b->n = below;
	copy_frames(b->frames, &s->frames[base_at + 1], below);
}

/*
 * Where a walk starts from what the thread knows: Context.run's call site (learnt at the
 * thread's first callback, bpf/callback.bpf.c) and, armed, the bottom saved in this callback.
 */
static __always_inline const struct stack_bottom *
prepare_reuse(struct frame_walk *w, const struct thread_state *st, __u32 tid)
{
	const struct stack_bottom *b;

	w->base_at = NO_FRAME;
	/* an iteration's callbacks share no X; uvloop has none */
	if (st->base_code <= 1 || (st->flags & THREAD_ITERATION))
		return NULL;
	w->base_code = st->base_code;
	w->base_instr = st->base_instr;
	b = bpf_map_lookup_elem(&stack_bottoms, &tid);
	if (!b || b->cb_seq != st->cb_seq || !b->addr)
		return NULL;
	w->known_addr = b->addr;
	w->known_first_local = b->first_local;
	return b;
}

/*
 * Walk the interpreter frames of tstate into frames[]; returns how many were stored and
 * says in *end why the walk stopped (enum stack_end). Armed, a callback's later walks stop
 * at the frame that called Context.run and reuse what the first whole walk read below it:
 * the same frames, one read each fewer (docs/PERFORMANCE.md).
 */
static __always_inline __u32 walk_stack(const struct target_cfg *cfg,
					const struct thread_state *st, __u32 tid, __u64 tstate,
					struct py_frame *frames, __u32 *end)
{
	const struct py_layout *l = &cfg->layout;
	struct frame_walk w = {
		.frame = current_frame(cfg, tstate),
		.depth = cfg->trace_depth < AIOCOPD_MAX_FRAMES ? cfg->trace_depth :
								  AIOCOPD_MAX_FRAMES,
		.code = l->frame_code,
		.previous = l->frame_previous,
		.instr = l->frame_instr,
		.owner = l->frame_owner,
		.owner_shim = l->frame_owner_shim,
		.localsplus = l->frame_localsplus,
	};
	const struct stack_bottom *bottom = prepare_reuse(&w, st, tid);
	__u32 zero = 0, n;
	struct scratch *s;

	/* shim frames are skipped, so allow a few more hops than frames kept */
	bpf_loop(AIOCOPD_MAX_FRAMES + 8, frame_step, &w, 0);
	/* out of hops with frames left is a cut too: what is there is the innermost part */
	*end = !w.frame ? STACK_WHOLE : w.broken ? STACK_BROKEN : STACK_CUT;
	s = bpf_map_lookup_elem(&scratch_map, &zero);
	if (!s)
		return 0;
	n = w.n;
	if (w.reuse && bottom) {
		n = reuse_bottom(s, bottom, n, w.depth, end);
		if (!bottom_still(bottom, &w, st->cb_seq)) {
			n = w.n;
			*end = STACK_BROKEN;
		}
	} else if (w.base_at != NO_FRAME && *end == STACK_WHOLE)
		save_bottom(s, tid, st->cb_seq, w.base_at, n);
	if (!n || n > AIOCOPD_MAX_FRAMES)
		return 0;
	copy_frames(frames, s->frames, n);
	return n;
}

static __always_inline __u64 type_flags(const struct py_layout *l, __u64 obj)
{
	__u64 type = read_ptr(obj + PY_OBJECT_TYPE);

	return type ? read_ptr(type + l->type_flags) : 0;
}

static __always_inline int read_type_name(const struct py_layout *l, __u64 obj,
					  char *buf, __u32 len)
{
	__u64 type = read_ptr(obj + PY_OBJECT_TYPE);
	__u64 name = type ? read_ptr(type + l->type_name) : 0;

	if (!name)
		return -1;
	return bpf_probe_read_user_str(buf, len, (const void *)name) > 0 ? 0 : -1;
}

/* Where a compact str object (ASCII or Latin-1) keeps its characters, a byte each; else 0. */
static __always_inline __u64 pystr_bytes(const struct py_layout *l, __u64 obj)
{
	__u32 state = 0;

	if (!obj || bpf_probe_read_user(&state, sizeof(state), (const void *)(obj + l->str_state)))
		return 0;
	if (!(state & (1u << 5)))		/* not compact: legacy string, give up */
		return 0;
	if (state & (1u << 6))			/* ascii */
		return obj + l->str_ascii_data;
	if (((state >> 2) & 7) == 1)		/* one byte per char */
		return obj + l->str_compact_data;
	return 0;
}

/* Copy a compact str object (ASCII or Latin-1) as a C string; obj is known to be a str. */
static __always_inline int copy_pystr(const struct py_layout *l, __u64 obj, char *buf, __u32 len)
{
	__u64 data = pystr_bytes(l, obj);

	if (!data)
		return -1;
	return bpf_probe_read_user_str(buf, len, (const void *)data) > 0 ? 0 : -1;
}

/*
 * The same for an object the target chose: only a str is read as one (anything else laid
 * over a str's fields would be garbage). On failure buf holds an empty string.
 */
static __always_inline int read_pystr(const struct py_layout *l, __u64 obj, char *buf, __u32 len)
{
	buf[0] = 0;
	if (!obj || !(type_flags(l, obj) & Py_TPFLAGS_UNICODE_SUBCLASS))
		return -1;
	if (copy_pystr(l, obj, buf, len)) {
		buf[0] = 0;
		return -1;
	}
	return 0;
}

/* Render any object briefly: str and bytes as text, small ints as numbers, else the type name. */
static __always_inline int name_is(const char *name, const char *want, int len)
{
	for (int i = 0; i < len; i++)
		if (name[i] != want[i])
			return 0;
	return 1;
}

static __always_inline void render_pyobj(const struct py_layout *l, __u64 obj, char *buf, __u32 len)
{
	__u64 flags;

	buf[0] = 0;
	if (!obj)
		return;
	flags = type_flags(l, obj);
	/*
	 * A tuple or list stands for its first item: gethostbyname and its kin audit their
	 * whole argument tuple, whose first item is the host; subprocess.Popen its argv list,
	 * whose first item is the command.
	 */
	if ((flags & (Py_TPFLAGS_TUPLE_SUBCLASS | Py_TPFLAGS_LIST_SUBCLASS)) &&
	    (__s64)read_ptr(obj + PY_VAR_SIZE) >= 1) {
		obj = flags & Py_TPFLAGS_TUPLE_SUBCLASS ? read_ptr(obj + PY_TUPLE_FIRST_ITEM)
							: read_ptr(read_ptr(obj + PY_LIST_ITEMS));
		if (!obj)
			return;
		flags = type_flags(l, obj);
	}
	if (flags & Py_TPFLAGS_UNICODE_SUBCLASS) {
		copy_pystr(l, obj, buf, len);
	} else if (flags & Py_TPFLAGS_BYTES_SUBCLASS) {
		bpf_probe_read_user_str(buf, len, (const void *)(obj + l->bytes_data));
	} else if (flags & Py_TPFLAGS_LONG_SUBCLASS) {
		__s64 size = (__s64)read_ptr(obj + 16);
		__u32 digit = 0;
		__u64 v[1];

		bpf_probe_read_user(&digit, sizeof(digit), (const void *)(obj + l->long_digit));
		v[0] = size == 0 ? 0 : digit;
		bpf_snprintf(buf, len, size < 0 ? "-%llu" : "%llu", v, sizeof(v));
	} else if (!read_type_name(l, obj, buf, len) && name_is(buf, "float", 6)) {
		/* BPF cannot print a double: pass its bits, user space formats them */
		__u64 bits[1] = { read_ptr(obj + 16) };

		bpf_snprintf(buf, len, "float:%llx", bits, sizeof(bits));
	}
}

/*
 * Where a coroutine is: its frame's code and instruction (3.10: a frame object's f_lasti).
 * A callback that finished its coroutine is named after that, until the next one starts:
 * 3.10 has dropped the frame by then, and names it by its code alone (where it is defined).
 */
static __always_inline void locate_coro(const struct py_layout *l, __u64 coro,
					struct callback_ident *id)
{
	__u64 frame;

	if (!l->coro_frame)
		return;
	frame = l->coro_frame_ptr ? read_ptr(coro + l->coro_frame) : coro + l->coro_frame;
	if (!frame) {
		if (l->coro_code)
			id->code = read_ptr(coro + l->coro_code);
		return;
	}
	id->code = read_ptr(frame + l->frame_code) & ~PY_STACKREF_TAGS;
	id->instr = read_ptr(frame + l->frame_instr);
}

/* A plain function's code, for where it is defined. */
static __always_inline void locate_function(const struct py_layout *l, __u64 func,
					    struct callback_ident *id)
{
	if (func && l->func_code)
		id->code = read_ptr(func + l->func_code);
}

static __always_inline void ident_from_task(const struct py_layout *l, __u64 task,
					    struct callback_ident *id, struct named_task *key)
{
	__u64 name = read_ptr(task + l->task_name);
	__u64 coro = read_ptr(task + l->task_coro);
	__u64 qualname;

	if (key) {
		key->task = task;
		key->name = name;
		key->coro = coro;
	}

	if (type_flags(l, name) & Py_TPFLAGS_LONG_SUBCLASS) {
		__u32 digit = 0;

		bpf_probe_read_user(&digit, sizeof(digit), (const void *)(name + l->long_digit));
		id->name_kind = TASK_NAME_INT;
		id->name_int = digit;
	} else if (read_pystr(l, name, id->task_name, sizeof(id->task_name))) {
		id->name_kind = TASK_NAME_UNKNOWN;
	}
	if (!coro)
		return;
	qualname = read_ptr(coro + l->coro_qualname);
	if (key)
		key->qualname = qualname;
	read_pystr(l, qualname, id->qualname, sizeof(id->qualname));
	locate_coro(l, coro, id);
}

/*
 * 3.14+: _asyncio keeps the Task whose step runs now in the thread state. uvloop runs steps
 * with no Handle._run frame to find: unarmed, this is how its Task is named.
 */
static __always_inline int ident_from_running_task(const struct py_layout *l, __u64 tstate,
						   struct callback_ident *id)
{
	__u64 task;

	if (!l->tstate_running_task || !tstate)
		return -1;
	task = read_ptr(tstate + l->tstate_running_task);
	if (!task || (task & 7))
		return -1;
	__builtin_memset(id, 0, sizeof(*id));
	id->kind = CB_TASK_STEP;
	id->callable = task;		/* (only ever compared with 0) */
	ident_from_task(l, task, id, NULL);
	return 0;
}

/*
 * Identify the callable Context.run was given while it is still alive. A Task step also
 * says in *key (when given) what it was named from, so that the Task's next step can be
 * named again for less (rename_task_step).
 */
static __always_inline void capture_ident(const struct target_cfg *cfg, __u64 args,
					  struct callback_ident *id, struct named_task *key)
{
	const struct py_layout *l = &cfg->layout;
	__u64 callable = read_ptr(args);

	__builtin_memset(id, 0, sizeof(*id));
	/*
	 * Context.run's argument vector is read while its callback runs, or (named late) after
	 * the callback returned and before the next one starts: the slot may hold something
	 * else by then. What Context.run was given can be called; anything else is not named.
	 */
	if (!callable || !read_ptr(read_ptr(callable + PY_OBJECT_TYPE) + l->type_call))
		return;
	id->callable = callable;
	if (read_type_name(l, callable, id->type_name, sizeof(id->type_name)))
		return;
	/* 3.12+ names its C types after their module: "_asyncio.TaskStepMethWrapper" */
	if (name_is(id->type_name, "TaskStepMethWrapper", 20) ||
	    name_is(id->type_name, "_asyncio.TaskStepMethWrapper", 29)) {
		id->kind = CB_TASK_STEP;
		ident_from_task(l, read_ptr(callable + l->stepwrapper_task), id, key);
		if (key) {
			key->type = read_ptr(callable + PY_OBJECT_TYPE);
			key->code = id->code;
		}
	} else if (name_is(id->type_name, "builtin_function_or_method", 27)) {
		__u64 self = read_ptr(callable + l->cfunc_self);
		char self_type[AIOCOPD_TYPE_LEN] = {};

		/* task_wakeup bound to its Task: "_asyncio.Task" or a subclass's name */
		read_type_name(l, self, self_type, sizeof(self_type));
		if (name_is(self_type, "_asyncio.Task", 14)) {
			id->kind = CB_TASK_WAKEUP;
			ident_from_task(l, self, id, NULL);
		} else {
			id->kind = CB_OTHER;
		}
	} else if (name_is(id->type_name, "function", 9)) {
		id->kind = CB_FUNCTION;
		read_pystr(l, read_ptr(callable + l->func_qualname), id->qualname,
			   sizeof(id->qualname));
		locate_function(l, callable, id);
	} else if (name_is(id->type_name, "method", 7)) {
		__u64 func = read_ptr(callable + l->method_func);

		id->kind = CB_FUNCTION;
		read_pystr(l, read_ptr(func + l->func_qualname), id->qualname,
			   sizeof(id->qualname));
		locate_function(l, func, id);
	} else {
		id->kind = CB_OTHER;
	}
}

/*
 * Unarmed, the running callback is found on the stack: the innermost frame whose "self" is
 * an asyncio Handle is Handle._run, and that Handle holds the callback. Only slow paths
 * (a slow syscall, a sample of a long iteration) look, so the reads per frame are fine.
 */
struct handle_search {
	__u64 handle;
	__u32 n;
	__u16 type_name;
	__u16 localsplus;
};

static long handle_step(__u32 i, struct handle_search *h)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
	char name[16] = {};
	__u64 obj, type, tp_name;

	if (!s || i >= h->n)
		return 1;
	obj = s->frames[i & (AIOCOPD_MAX_FRAMES - 1)].first_local;
	if (!obj)
		obj = read_ptr(s->frames[i & (AIOCOPD_MAX_FRAMES - 1)].addr + h->localsplus);
	type = obj ? read_ptr(obj + PY_OBJECT_TYPE) : 0;
	tp_name = type ? read_ptr(type + h->type_name) : 0;
	if (!tp_name || bpf_probe_read_user_str(name, sizeof(name), (const void *)tp_name) <= 0)
		return 0;
	if (name_is(name, "Handle", 7) || name_is(name, "TimerHandle", 12)) {
		h->handle = obj;
		return 1;
	}
	return 0;
}

/* After walk_stack() filled the scratch frames: identify the callback they run in. */
static __always_inline int ident_from_stack(const struct target_cfg *cfg, __u32 n_frames,
					    struct callback_ident *id)
{
	struct handle_search h = {
		.n = n_frames,
		.type_name = cfg->layout.type_name,
		.localsplus = cfg->layout.frame_localsplus,
	};

	bpf_loop(AIOCOPD_MAX_FRAMES, handle_step, &h, 0);
	if (!h.handle)
		return -1;
	capture_ident(cfg, h.handle + cfg->layout.handle_callback, id, NULL);
	return id->callable ? 0 : -1;
}

#endif /* AIOCOPD_PYREAD_BPF_H */
