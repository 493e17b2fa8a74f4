// SPDX-License-Identifier: GPL-2.0
/*
 * Callback boundaries, armed: every asyncio callback runs through Context.run, and every
 * uvloop callback between PyContext_Enter and PyContext_Exit. A callback ends where the next
 * one starts or where the loop waits again (bpf/loop.bpf.c). Also the time a callback
 * spends collecting garbage, from the collector's entry and return.
 */
#include "common.bpf.h"
#include "scope.bpf.h"
#include <bpf/usdt.bpf.h>

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

/* Out of line: naming is rare, and the path every callback takes stays short. */
static __noinline int name_at_start(const struct target_cfg *cfg, struct thread_state *st,
				    __u32 tid)
{
	ensure_ident(cfg, st, tid);
	return 0;
}

/*
 * Where this thread calls Context.run from: the caller's frame (Handle._run) is current
 * here, its code and instruction are that call's. Learnt at the thread's first callback,
 * so that the stack walks of every later one can stop there (walk_stack).
 */
static __noinline int learn_base(const struct target_cfg *cfg, struct thread_state *st,
				 __u32 tid)
{
	__u64 tstate = current_thread_state(cfg, st, tid);
	__u64 frame = tstate ? current_frame(cfg, tstate) : 0;
	__u64 code = frame ? read_ptr(frame + cfg->layout.frame_code) & ~PY_STACKREF_TAGS : 0;

	st->base_instr = code ? read_ptr(frame + cfg->layout.frame_instr) : 0;
	st->base_code = code && st->base_instr ? code : 1;
	return 0;
}

/* A loop thread starts a callback: the previous one (or the iteration) ends here. */
static __always_inline int start_callback(const struct target_cfg *cfg, struct thread_state *st,
					  __u32 pid, __u32 tid, __u64 args)
{
	__u64 now = bpf_ktime_get_ns();

	close_callback(cfg, st, pid, tid, now);
	open_scope(st, now, args, 0);
	forget_ident(tid);
	st->iter_callbacks++;
	/*
	 * An iteration already a quarter of the threshold old may become the loop's lag: its
	 * callbacks are named as they start, while what they run is surely alive, so that the
	 * longest can be named (bpf/scope.bpf.h, keep_top). Short iterations pay nothing.
	 */
	if (st->iter_start_ns && now - st->iter_start_ns >= cfg->threshold_ns / 4)
		name_at_start(cfg, st, tid);
	if (cfg->flags & TARGET_STATS) {
		struct loop_stats *ls = bpf_map_lookup_elem(&loop_stats, &tid);

		if (ls)
			ls->callbacks++;
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

	program_begin();
	st = loop_thread(&tid, &pid, &cfg);
	if (st) {
		if (!st->base_code)
			learn_base(cfg, st, tid);
		start_callback(cfg, st, pid, tid, args);
	}
	program_end();
	return 0;
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

	program_begin();
	st = loop_thread(&tid, &pid, &cfg);
	if (st) {
		for (int i = 0; i < 6 && !callable; i++)
			callable = uvloop_handle_callable(&cfg->layout, candidates[i],
							  (__u64)context);
		start_callback(cfg, st, pid, tid, callable);
	}
	program_end();
	return 0;
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
