// SPDX-License-Identifier: GPL-2.0
/*
 * From records to a report. Every record's stack is named once, up front: attribution, the
 * "outside any callback" check and the rendered traces all read the same names, and a
 * resolver's strings need not outlive its next lookup.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "reconstruct.h"
#include "syscall_table.h"

#define MAX_TRACE_TEXT		8192

/* One frame of a record's stack, named. */
struct frame_name {
	struct py_location loc;		/* its strings are in text */
	char *text;
};

struct named_stack {
	const struct event_blocking *ev;
	struct frame_name *frames;	/* ev->n_frames of them */
	unsigned n;
	bool cut;			/* BPF saw more frames than it kept (deep, or unreadable) */
};

/* ---- naming the stacks ------------------------------------------------------------------ */

static int copy_location(const struct py_location *loc, struct frame_name *out)
{
	size_t file = strlen(loc->file) + 1, function = strlen(loc->function) + 1;
	size_t qualname = strlen(loc->qualname) + 1;
	char *text = malloc(file + function + qualname);

	if (!text)
		return -ENOMEM;
	memcpy(text, loc->file, file);
	memcpy(text + file, loc->function, function);
	memcpy(text + file + function, loc->qualname, qualname);
	out->text = text;
	out->loc = (struct py_location){ text, text + file, text + file + function, loc->line };
	return 0;
}

static void free_stacks(struct named_stack *stacks, size_t n)
{
	for (size_t i = 0; stacks && i < n; i++) {
		for (unsigned k = 0; k < stacks[i].n; k++)
			free(stacks[i].frames[k].text);
		free(stacks[i].frames);
	}
	free(stacks);
}

static int name_stack(const struct recon_resolver *res, const struct event_blocking *ev,
		      struct named_stack *out)
{
	unsigned n = ev->n_frames < AIOCOPD_MAX_FRAMES ? ev->n_frames : AIOCOPD_MAX_FRAMES;

	out->ev = ev;
	out->cut = n && ev->stack_end != STACK_WHOLE;
	if (!n)
		return 0;
	out->frames = calloc(n, sizeof(*out->frames));
	if (!out->frames)
		return -ENOMEM;
	for (; out->n < n; out->n++) {
		struct py_location loc;

		res->locate(res->ctx, ev->frames[out->n].code, ev->frames[out->n].instr, &loc);
		if (copy_location(&loc, &out->frames[out->n]))
			return -ENOMEM;
	}
	return 0;
}

static struct named_stack *name_stacks(const struct recon_resolver *res,
				       const struct record *recs, size_t n)
{
	struct named_stack *stacks = calloc(n ? n : 1, sizeof(*stacks));

	for (size_t i = 0; stacks && i < n; i++) {
		if (name_stack(res, recs[i].ev, &stacks[i])) {
			free_stacks(stacks, n);
			return NULL;
		}
	}
	return stacks;
}

/* ---- rendering a stack ------------------------------------------------------------------ */

/*
 * CPython's own shim frames have no source: 3.13 runs __init__ of a class call through a
 * static code object named "__init__" in a file named "__init__", with no line table.
 */
static bool is_shim_frame(const struct py_location *loc)
{
	return loc->line <= 0 && loc->file[0] != '<' && strcmp(loc->file, "?") &&
	       !strchr(loc->file, '/');
}

/* "path:line:function"; a line that cannot be one (<= 0: unread, or a corrupt code object) is "?". */
static void format_frame(char *buf, size_t bufsz, const char *file, int line, const char *function)
{
	if (line > 0)
		snprintf(buf, bufsz, "%s:%d:%s", file, line, function);
	else
		snprintf(buf, bufsz, "%s:?:%s", file, function);
}

/* Code installed by a package manager: a library, not the application, wherever it lives. */
static bool is_third_party_path(const char *path)
{
	return strstr(path, "/site-packages/") || strstr(path, "/dist-packages/");
}

static bool has_app_prefix(const struct recon_options *opt, const char *path)
{
	for (unsigned i = 0; i < opt->n_app_paths && i < RECON_MAX_APP_PATHS; i++)
		if (!strncmp(path, opt->app_paths[i], strlen(opt->app_paths[i])))
			return true;
	return false;
}

/*
 * How surely a frame is the application's own (SPEC section 3, entry_point): a file under
 * --app-path is; else one neither in the standard library nor installed as a package; else
 * any frame outside the standard library (every such frame is third-party); else none.
 */
enum app_rank { RANK_NONE = 0, RANK_LIBRARY, RANK_NOT_LIBRARY, RANK_APP_PATH };

static enum app_rank app_rank(const struct recon_options *opt, const char *path)
{
	if (opt->n_app_paths && has_app_prefix(opt, path))
		return RANK_APP_PATH;
	if (is_stdlib_path(path) || !strcmp(path, "?"))
		return RANK_NONE;
	return is_third_party_path(path) ? RANK_LIBRARY : RANK_NOT_LIBRARY;
}

/*
 * The entry point: the innermost frame of the best rank over every frame kept (the depth
 * limits what is shown, not where the application is), else the innermost frame shown.
 */
static void find_entry_point(const struct named_stack *s, const struct recon_options *opt,
			     char *buf, size_t bufsz)
{
	enum app_rank best = RANK_NONE;

	for (unsigned i = 0; i < s->n; i++) {
		const struct py_location *loc = &s->frames[i].loc;
		enum app_rank rank;

		if (is_shim_frame(loc))
			continue;
		rank = app_rank(opt, loc->file);
		if (rank > best) {
			best = rank;
			format_frame(buf, bufsz, loc->file, loc->line, loc->function);
		}
	}
}

/* Builds the trace and the entry point of one record's stack. */
static void describe_stack(const struct named_stack *s, const struct recon_options *opt,
			   struct report_event *out)
{
	char *trace = calloc(1, MAX_TRACE_TEXT);
	char frame[1024], entry[1024] = "", innermost[1024] = "";
	unsigned shown = 0, i, depth = opt->trace_depth;
	size_t used = 0;

	if (!trace)
		goto out;
	for (i = 0; i < s->n && shown < depth; i++) {
		const struct py_location *loc = &s->frames[i].loc;

		if (is_shim_frame(loc))
			continue;
		format_frame(frame, sizeof(frame), loc->file, loc->line, loc->function);
		if (shown == 0)
			snprintf(innermost, sizeof(innermost), "%s", frame);
		if (used < MAX_TRACE_TEXT)
			used += snprintf(trace + used, MAX_TRACE_TEXT - used, "%s%s",
					 shown ? " <- " : "", frame);
		shown++;
	}
	out->trace_cut = shown && (s->cut || i < s->n);
	find_entry_point(s, opt, entry, sizeof(entry));
out:
	out->trace = trace;
	out->entry_point = strdup(entry[0] ? entry : innermost);
}

/* ---- naming the callback ---------------------------------------------------------------- */

/* Names read by BPF are ASCII or Latin-1 (the only str kinds it copies). */
static void copy_name(char *dst, size_t dstsz, const char *src, size_t srcsz)
{
	latin1_to_utf8((const uint8_t *)src, strnlen(src, srcsz), dst, dstsz);
}

static void name_callback(const struct callback_ident *id, bool valid, struct report *r)
{
	if (!valid) {
		snprintf(r->callback, sizeof(r->callback), "<unknown>");
		return;
	}
	switch (id->kind) {
	case CB_TASK_STEP:
	case CB_TASK_WAKEUP:
		r->is_task = true;
		if (id->name_kind == TASK_NAME_INT)
			snprintf(r->task_name, sizeof(r->task_name), "Task-%llu",
				 (unsigned long long)id->name_int);
		else if (id->name_kind == TASK_NAME_STR)
			copy_name(r->task_name, sizeof(r->task_name), id->task_name,
				  sizeof(id->task_name));
		else	/* not a str: whatever its bytes say is not a name */
			snprintf(r->task_name, sizeof(r->task_name), "?");
		copy_name(r->coro, sizeof(r->coro), id->qualname, sizeof(id->qualname));
		snprintf(r->callback, sizeof(r->callback), "%s",
			 id->kind == CB_TASK_STEP ? "Task.__step" : "Task.__wakeup");
		break;
	case CB_FUNCTION:
		copy_name(r->callback, sizeof(r->callback), id->qualname, sizeof(id->qualname));
		break;
	default:
		snprintf(r->callback, sizeof(r->callback), "%.*s", (int)sizeof(id->type_name),
			 id->type_name);
		break;
	}
}

/* Where a coroutine's frame is: inside the object, or (3.10) behind a pointer. */
static int coro_frame_addr(const struct recon_resolver *res, uint64_t coro, uint64_t *addr)
{
	const struct py_user_layout *u = &res->layout->user;

	if (u->coro_frame_ptr)
		return res->read_u64(res->ctx, coro + u->coro_frame_ptr, addr);
	*addr = coro + u->coro_iframe;
	return 0;
}

/*
 * A Task's name object as text: a str as it is, an int (3.12+ keeps an unnamed Task's
 * counter) as "Task-N" the way Python names it; anything else is not a name.
 */
static int task_name_text(const struct recon_resolver *res, uint64_t name, struct report *r)
{
	const struct py_layout *l = &res->layout->bpf;
	uint64_t type, flags, digit;

	if (res->read_u64(res->ctx, name + PY_OBJECT_TYPE, &type) ||
	    res->read_u64(res->ctx, type + l->type_flags, &flags))
		return -1;
	if (!(flags & Py_TPFLAGS_LONG_SUBCLASS))
		return res->read_str(res->ctx, name, r->task_name, sizeof(r->task_name));
	if (res->read_u64(res->ctx, name + l->long_digit, &digit))
		return -1;
	snprintf(r->task_name, sizeof(r->task_name), "Task-%u", (unsigned)(digit & PY_LONG_DIGIT_MASK));
	return 0;
}

/*
 * A Task's name, through the Handle that ran it ("self" of Handle._run), trusted only when
 * the Task's coroutine owns exactly the frame the stack shows: the objects may be gone by now.
 */
static bool task_owns_frame(const struct recon_resolver *res, uint64_t task,
			    const struct py_frame *coro_frame)
{
	uint64_t coro, frame;

	return !res->read_u64(res->ctx, task + res->layout->bpf.task_coro, &coro) &&
	       !coro_frame_addr(res, coro, &frame) && frame == coro_frame->addr;
}

/*
 * The Handle's callback is a TaskStepMethWrapper (Task.__step) or the builtin task_wakeup
 * bound to the Task (Task.__wakeup): its Task is whichever of the two owns the frame.
 */
static void task_name_from_handle(const struct recon_resolver *res, const struct py_frame *run,
				  const struct py_frame *coro_frame, struct report *r)
{
	const struct py_layout *l = &res->layout->bpf;
	uint64_t callback, task = 0, name;

	if (res->read_u64(res->ctx, run->first_local + l->handle_callback, &callback) ||
	    ((res->read_u64(res->ctx, callback + l->stepwrapper_task, &task) ||
	      !task_owns_frame(res, task, coro_frame)) &&
	     (res->read_u64(res->ctx, callback + l->cfunc_self, &task) ||
	      !task_owns_frame(res, task, coro_frame))) ||
	    res->read_u64(res->ctx, task + l->task_name, &name) ||
	    task_name_text(res, name, r))
		snprintf(r->task_name, sizeof(r->task_name), "?");
}

static bool is_handle_run(const struct py_location *loc)
{
	return !strcmp(loc->function, "_run") && path_ends_with(loc->file, "asyncio/events.py");
}

static bool is_loop_machinery(const struct py_location *loc)
{
	return path_ends_with(loc->file, "asyncio/runners.py") ||
	       path_ends_with(loc->file, "asyncio/base_events.py") ||
	       !strcmp(loc->function, "<module>");
}

/* The first frame, over all stacks, that is_caller accepts and that called another one. */
static const struct named_stack *find_caller(const struct named_stack *stacks, size_t n,
					     bool (*is_caller)(const struct py_location *),
					     unsigned *at)
{
	for (size_t i = 0; i < n; i++)
		for (unsigned k = 1; k < stacks[i].n; k++)
			if (is_caller(&stacks[i].frames[k].loc)) {
				*at = k;
				return &stacks[i];
			}
	return NULL;
}

/* Names the callback from the frame its caller (frame at) called: a Task's coroutine, or not. */
static void name_from_callee(const struct recon_resolver *res, const struct named_stack *s,
			     unsigned at, bool through_handle, struct report *r)
{
	const struct py_frame *callee = &s->ev->frames[at - 1];
	const char *qualname = s->frames[at - 1].loc.qualname;

	if (callee->owner != res->layout->user.frame_owner_generator) {
		snprintf(r->callback, sizeof(r->callback), "%s", qualname);
		return;
	}
	r->is_task = true;
	snprintf(r->coro, sizeof(r->coro), "%s", qualname);
	snprintf(r->callback, sizeof(r->callback), "Task.__step");
	if (through_handle)
		task_name_from_handle(res, &s->ev->frames[at], callee, r);
	else
		snprintf(r->task_name, sizeof(r->task_name), "?");
}

/*
 * Without BPF's identity (unarmed reports, uvloop), the callback is the frame Handle._run
 * called. uvloop runs callbacks from Cython, with no Handle._run: there the callback's
 * outermost frame sits right above what started the loop (asyncio.run's frames, or the
 * module), and its Task cannot be reached.
 */
static void attribute_from_stacks(const struct recon_resolver *res,
				  const struct named_stack *stacks, size_t n, struct report *r)
{
	const struct named_stack *s;
	unsigned at;

	snprintf(r->callback, sizeof(r->callback), "<loop iteration>");
	if ((s = find_caller(stacks, n, is_handle_run, &at)))
		name_from_callee(res, s, at, true, r);
	else if ((s = find_caller(stacks, n, is_loop_machinery, &at)))
		name_from_callee(res, s, at, false, r);
}

/* Where a thread's Python code begins: a script or module run, or a thread's bootstrap. */
static bool is_thread_bottom(const struct py_location *loc)
{
	return !strcmp(loc->function, "<module>") || path_ends_with(loc->file, "/threading.py");
}

/*
 * A stack proves it ran outside any callback only when it is whole (the chain of frames
 * ended, no frame past the trace depth, none unreadable), every frame is named, it starts
 * where a thread's code starts and no frame is Handle._run. A deep or broken stack proves
 * nothing: the callback may be further down.
 */
static bool proves_outside(const struct named_stack *s)
{
	if (s->cut || s->ev->stack_end != STACK_WHOLE)
		return false;
	for (unsigned k = 0; k < s->n; k++)
		if (!strcmp(s->frames[k].loc.file, "?") || is_handle_run(&s->frames[k].loc))
			return false;
	return is_thread_bottom(&s->frames[s->n - 1].loc);
}

/* Code objects that could not be read at all (the target exited) say nothing either way. */
static bool unreadable_stack(const struct named_stack *s)
{
	for (unsigned k = 0; k < s->n; k++)
		if (strcmp(s->frames[k].loc.file, "?"))
			return false;
	return true;
}

/*
 * A loop that stops (asyncio.run returning) leaves its last callback or iteration open until
 * the thread's next epoll_wait, maybe seconds later in another asyncio.run. What happened
 * in between ran outside any callback, and its stacks say so: such a report is dropped, but
 * only when every stack that says anything proves it.
 */
static bool outside_any_callback(const struct recon_resolver *res,
				 const struct named_stack *stacks, size_t n)
{
	size_t proofs = 0;

	for (size_t i = 0; i < n; i++) {
		if (!stacks[i].n || unreadable_stack(&stacks[i]))
			continue;
		if (!proves_outside(&stacks[i]))
			return false;
		proofs++;
	}
	/* uvloop's callbacks never show Handle._run: ask only when it matters */
	return proofs > 0 && !res->uses_uvloop(res->ctx);
}

/* ---- operations ------------------------------------------------------------------------- */

/* Text that filled its fixed-size BPF buffer was cut: say so rather than show a wrong name. */
static const char *mark_cut(const char *text, size_t bufsz, char *out, size_t outsz)
{
	size_t n = strnlen(text, bufsz);

	if (n < bufsz - 1)
		return text;
	snprintf(out, outsz, "%.*s...", (int)n, text);
	return out;
}

struct raw_text {
	char path[AIOCOPD_STR_LEN + 4];
	char args[3][AIOCOPD_NAME_LEN + 4];
	struct sockaddr_in6 peer;	/* big enough for either family */
};

/* The socket's peer BPF read, as a sockaddr classify formats; none when it has no port. */
static void peer_from_record(const struct event_blocking *e, struct raw_op *r,
			     struct raw_text *t)
{
	memset(&t->peer, 0, sizeof(t->peer));
	if (!e->peer_port)
		return;		/* unconnected: its destination, if any, is the call's */
	if (e->peer_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&t->peer;

		in->sin_family = AF_INET;
		in->sin_port = e->peer_port;
		memcpy(&in->sin_addr, e->peer_addr, sizeof(in->sin_addr));
		r->peer_len = sizeof(*in);
	} else if (e->peer_family == AF_INET6) {
		t->peer.sin6_family = AF_INET6;
		t->peer.sin6_port = e->peer_port;
		memcpy(&t->peer.sin6_addr, e->peer_addr, sizeof(t->peer.sin6_addr));
		r->peer_len = sizeof(t->peer);
	} else {
		return;
	}
	r->peer = (const uint8_t *)&t->peer;
}

/* What the stack says the operation is for: a database driver's, or a child's pipe. */
static void hints_from_stack(const struct named_stack *s, struct raw_op *r)
{
	for (unsigned k = 0; k < s->n; k++) {
		const char *file = s->frames[k].loc.file;

		if (is_database_driver_path(file))
			r->database_stack = true;
		if (path_ends_with(file, "/subprocess.py"))
			r->subprocess_stack = true;
	}
}

/* BPF copied a socket address or a timespec of this syscall into the record, not a path. */
static bool copies_operand(unsigned int nr)
{
	const struct syscall_info *s = syscall_info(nr);

	return s && !s->props.path_arg && s->props.operand_arg;
}

static void raw_from_record(const struct record *rec, const struct named_stack *stack,
			    struct raw_op *r, struct raw_text *t)
{
	const struct event_blocking *e = rec->ev;
	static const char empty[] = "";

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	hints_from_stack(stack, r);
	r->audit = e->source == SOURCE_AUDIT;
	r->sample = e->source == SOURCE_SAMPLE;
	r->nr = e->nr;
	memcpy(r->args, e->args, sizeof(r->args));
	r->ret = e->ret;
	r->fd_mode = e->fd_mode;
	r->start_ns = e->h.ts_ns;
	r->duration_ns = e->duration_ns;
	if (e->n_frames) {
		r->site_code = e->frames[0].code;
		r->site_instr = e->frames[0].instr;
	}
	if (r->audit) {
		r->name = e->str;
		for (int i = 0; i < 3; i++)
			r->arg_text[i] = e->arg_text[i][0] ?
					 mark_cut(e->arg_text[i], sizeof(e->arg_text[i]),
						  t->args[i], sizeof(t->args[i])) : empty;
		return;
	}
	r->fd = e->fd;
	peer_from_record(e, r, t);
	if (e->fd_mode && rec->fd_path && rec->fd_path[0])
		r->fd_path = rec->fd_path;
	if (e->n_str && copies_operand(e->nr)) {
		r->sockaddr = (const uint8_t *)e->str;
		r->sockaddr_len = e->n_str < sizeof(e->str) ? e->n_str : sizeof(e->str);
	} else if (e->n_str) {
		r->path = mark_cut(e->str, sizeof(e->str), t->path, sizeof(t->path));
	}
}

/*
 * Records merge into operations; each shows the stack of the record that started it. What
 * could not block is dropped; the score and level follow SPEC 4 (out is timed already).
 */
static int add_events(const struct record *recs, const struct named_stack *stacks, size_t n,
		      const struct recon_options *opt, struct report *out)
{
	struct op *ops = calloc(n ? n : 1, sizeof(*ops));
	uint64_t threshold_ns = out->threshold_ms * 1e6;
	size_t n_ops = 0;

	if (!ops)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct raw_text text;
		struct raw_op r;

		raw_from_record(&recs[i], &stacks[i], &r, &text);
		n_ops = ops_add(ops, n_ops, n, &r, i);
	}
	n_ops = ops_drop_unblocked(ops, n_ops);
	out->events = calloc(n_ops ? n_ops : 1, sizeof(*out->events));
	if (!out->events) {
		free(ops);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_ops; i++) {
		struct report_event *e = &out->events[i];

		memcpy(e->event, ops[i].name, sizeof(e->event));
		e->category = ops[i].category;
		e->severity = op_weight(&ops[i], threshold_ns);
		e->duration_ms = ops[i].duration_ns / 1e6;
		e->syscall = ops[i].syscall;
		e->start_ns = ops[i].start_ns;
		describe_stack(&stacks[ops[i].first_raw], opt, e);
	}
	out->n_events = n_ops;
	out->score = severity_score(ops, n_ops, threshold_ns);
	out->level = callback_level(out->score, out->elapsed_ms, out->threshold_ms);
	free(ops);
	return 0;
}

/* ---- CPU samples ------------------------------------------------------------------------ */

static void free_cpu_stack(struct report_cpu_stack *c)
{
	free(c->trace);
	free(c->entry_point);
}

/* Groups the CPU samples taken during the callback by stack, most frequent first. */
static int add_cpu_samples(const struct named_stack *stacks, size_t n,
			   const struct recon_options *opt, struct report *out)
{
	struct report_cpu_stack *all = calloc(n ? n : 1, sizeof(*all));
	size_t n_all = 0;

	if (!all)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct report_event stack = {};
		size_t k;

		if (stacks[i].ev->source != SOURCE_SAMPLE || !stacks[i].n)
			continue;
		out->cpu_samples++;
		describe_stack(&stacks[i], opt, &stack);
		all[n_all] = (struct report_cpu_stack){ stack.entry_point, stack.trace, 1,
							stack.trace_cut };
		for (k = 0; k < n_all; k++)
			if (stack.trace && all[k].trace && !strcmp(all[k].trace, stack.trace))
				break;
		if (k < n_all) {
			all[k].count++;
			free_cpu_stack(&all[n_all]);
		} else {
			n_all++;
		}
	}
	/* a handful of stacks: a selection of the most frequent is plenty */
	for (size_t i = 0; i < n_all; i++) {
		size_t best = i;

		for (size_t k = i + 1; k < n_all; k++)
			if (all[k].count > all[best].count)
				best = k;
		if (i < REPORT_MAX_CPU_STACKS) {
			struct report_cpu_stack tmp = all[i];

			all[i] = all[best];
			all[best] = tmp;
			out->cpu[out->n_cpu++] = all[i];
		} else {
			free_cpu_stack(&all[i]);
		}
	}
	free(all);
	return 0;
}

/* ---- one callback's share of a slow iteration ------------------------------------------ */

/*
 * Which callback of an unarmed iteration a record ran in: the Handle that Handle._run ran
 * and the frame it called (a Task's coroutine frame lives in the coroutine: one per Task).
 * uvloop shows no Handle._run: there the frame above the loop's machinery names it.
 */
struct callback_key {
	uint64_t handle, code, frame;
};

static bool record_key(const struct named_stack *s, struct callback_key *key,
		       const char **callee)
{
	unsigned at;

	if (!find_caller(s, 1, is_handle_run, &at) && !find_caller(s, 1, is_loop_machinery, &at))
		return false;
	*key = (struct callback_key){ is_handle_run(&s->frames[at].loc) ?
				      s->ev->frames[at].first_local : 0,
				      s->ev->frames[at - 1].code, s->ev->frames[at - 1].addr };
	*callee = s->frames[at - 1].loc.qualname;
	return true;
}

static bool same_key(const struct callback_key *a, const struct callback_key *b)
{
	return a->handle == b->handle && a->code == b->code && a->frame == b->frame;
}

/*
 * BPF named the iteration from the first stack it walked, while the objects were alive: that
 * name is the part's whose called frame it names.
 */
static bool ident_names(const struct event_callback *it, const char *callee)
{
	const struct callback_ident *id = &it->ident;

	size_t n = strnlen(id->qualname, sizeof(id->qualname));

	return it->ident_valid && n && !strncmp(id->qualname, callee, n) &&
	       (n == sizeof(id->qualname) || !callee[n]);
}

/*
 * Each record's part: the part of its callback; a record whose stack names none (cut, or
 * unreadable) goes with the callback before it, or the first one. Returns how many parts.
 */
static size_t assign_parts(const struct event_callback *it, const struct named_stack *stacks,
			   size_t n, size_t *part_of, struct callback_key *keys,
			   size_t *named_part)
{
	size_t n_parts = 0, current = SIZE_MAX;

	*named_part = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		struct callback_key key;
		const char *callee;
		size_t p;

		part_of[i] = SIZE_MAX;
		if (!record_key(&stacks[i], &key, &callee)) {
			part_of[i] = current;
			continue;
		}
		for (p = 0; p < n_parts && !same_key(&keys[p], &key); p++)
			;
		if (p == n_parts)
			keys[n_parts++] = key;
		part_of[i] = current = p;
		if (*named_part == SIZE_MAX && ident_names(it, callee))
			*named_part = p;
	}
	for (size_t i = 0; i < n; i++)
		if (part_of[i] == SIZE_MAX)
			part_of[i] = 0;
	return n_parts;
}

/*
 * A callback's share of the iteration, bounded by its records: from the first one's start
 * to the last one's end, and at least the time its operations took. Its CPU time is what
 * the iteration had and its operations leave; collections and omissions cannot be placed.
 */
static void bound_part(const struct event_callback *it, const struct record_set *set,
		       struct event_callback *cb)
{
	uint64_t first = UINT64_MAX, last = 0, ops = 0, span;

	*cb = *it;
	for (size_t i = 0; i < set->n; i++) {
		const struct event_blocking *e = set->recs[i].ev;
		uint64_t end = e->h.ts_ns + (e->source == SOURCE_SAMPLE ? 0 : e->duration_ns);

		if (e->h.ts_ns < first)
			first = e->h.ts_ns;
		if (end > last)
			last = end;
		if (e->source == SOURCE_SYSCALL)
			ops += e->duration_ns + e->folded_ns;
	}
	span = last > first ? last - first : 0;
	if (span < ops)
		span = ops;
	cb->h.ts_ns = first;
	cb->duration_ns = span;
	cb->oncpu_ns = it->oncpu_ns < span - ops ? it->oncpu_ns : span - ops;
	cb->ident_valid = 0;	/* BPF named one callback of the iteration: maybe not this one */
	cb->preempted_ns = 0;
	cb->gc_ns = 0;
	cb->omitted = 0;
	cb->omitted_ns = 0;
}

/* A part is a report when its callback blocked, or held the loop a threshold by itself. */
static bool part_reported(const struct recon_part *p, const struct recon_options *opt)
{
	for (size_t i = 0; i < p->set.n; i++)
		if (p->set.recs[i].ev->source != SOURCE_SAMPLE)
			return true;
	return p->cb.duration_ns / 1e6 >= opt->threshold_ms;
}

void recon_parts_free(struct recon_part *parts, size_t n)
{
	for (size_t i = 0; parts && i < n; i++)
		free(parts[i].set.recs);
	free(parts);
}

/* Every callback's part; then only those reported, unless none is (the loop's lag). */
static int gather_parts(const struct event_callback *it, const struct record_set *set,
			const size_t *part_of, size_t n_parts, size_t named_part,
			const struct recon_options *opt, struct recon_part *parts, size_t *n_out,
			bool *lag)
{
	size_t made = 0, kept = 0;

	for (size_t p = 0; p < n_parts; p++, made++) {
		struct recon_part *part = &parts[p];

		part->set = (struct record_set){ calloc(set->n, sizeof(struct record)), 0, 0, 0 };
		if (!part->set.recs) {
			*n_out = made;
			return -ENOMEM;
		}
		for (size_t i = 0; i < set->n; i++)
			if (part_of[i] == p)
				part->set.recs[part->set.n++] = set->recs[i];
		bound_part(it, &part->set, &part->cb);
		part->cb.ident_valid = p == named_part;
	}
	*lag = true;
	for (size_t p = 0; p < n_parts; p++)
		*lag = *lag && !part_reported(&parts[p], opt);
	for (size_t p = 0; p < n_parts && !*lag; p++) {
		if (!part_reported(&parts[p], opt)) {
			free(parts[p].set.recs);
			continue;
		}
		parts[kept++] = parts[p];
	}
	if (!*lag)
		n_parts = kept;
	/* what was not itemised belongs to the iteration: its first report says so */
	if (n_parts) {
		parts[0].set.omitted = set->omitted;
		parts[0].set.omitted_ns = set->omitted_ns;
	}
	*n_out = n_parts;
	return 0;
}

int reconstruct_split_iteration(const struct event_callback *it, const struct record_set *set,
				const struct recon_resolver *res, const struct recon_options *opt,
				struct recon_part **out, size_t *n_out, bool *lag)
{
	size_t n = set->n, n_parts = 0, named_part, *part_of = calloc(n ? n : 1, sizeof(*part_of));
	struct callback_key *keys = calloc(n ? n : 1, sizeof(*keys));
	struct named_stack *stacks = name_stacks(res, set->recs, n);
	struct recon_part *parts = calloc(n ? n : 1, sizeof(*parts));
	int ret = -ENOMEM;

	*out = NULL;
	*n_out = 0;
	*lag = false;
	if (!part_of || !keys || !stacks || !parts)
		goto out;
	if (it->scope == SCOPE_ITERATION)
		n_parts = assign_parts(it, stacks, n, part_of, keys, &named_part);
	if (n_parts <= 1) {
		/* one callback, or none told apart: the iteration is its report, as it came */
		parts[0] = (struct recon_part){ .set = *set, .cb = *it };
		parts[0].set.recs = calloc(n ? n : 1, sizeof(struct record));
		if (!parts[0].set.recs)
			goto out;
		memcpy(parts[0].set.recs, set->recs, n * sizeof(struct record));
		*n_out = 1;
		ret = 0;
	} else {
		ret = gather_parts(it, set, part_of, n_parts, named_part, opt, parts, n_out,
				   lag);
	}
out:
	if (ret) {
		recon_parts_free(parts, *n_out);
		*n_out = 0;
	} else {
		*out = parts;
	}
	free_stacks(stacks, n);
	free(keys);
	free(part_of);
	return ret;
}

/* ---- the report ------------------------------------------------------------------------- */

/*
 * Time the operations that put the thread to sleep: off CPU by what they are. Operations run
 * one after the other on one thread, so their sum is off-CPU time the callback certainly had.
 */
static double slept_ms(const struct report *r)
{
	double ms = 0;

	for (size_t i = 0; i < r->n_events; i++)
		if (r->events[i].category == CAT_SLEEP)
			ms += r->events[i].duration_ms;
	return ms;
}

/*
 * The on-CPU share BPF counted, held to what cannot be otherwise: at most the wall time, and
 * at most what the callback's sleeps left of it (a missed context switch must not turn a
 * sleep into CPU time).
 */
static void split_cpu_time(const struct event_callback *cb, struct report *out)
{
	double bound = out->elapsed_ms - slept_ms(out);

	out->oncpu_ms = cb->oncpu_ns / 1e6;
	if (bound < 0)
		bound = 0;
	if (out->oncpu_ms > bound)
		out->oncpu_ms = bound;
	out->offcpu_ms = out->elapsed_ms - out->oncpu_ms;
	out->preempted_ms = cb->preempted_ns / 1e6;
	if (out->preempted_ms > out->offcpu_ms)
		out->preempted_ms = out->offcpu_ms;
}

/* When, where and how long, of a callback or an iteration that began at h. */
static void time_span(const struct event_header *h, uint64_t duration_ns,
		      const struct recon_options *opt, struct report *out)
{
	out->start_ns = h->ts_ns;
	out->pid = h->pid;
	out->tid = h->tid;
	out->elapsed_ms = duration_ns / 1e6;
	out->threshold_ms = opt->threshold_ms;
	out->exceeded = out->elapsed_ms >= opt->threshold_ms;
}

static void time_callback(const struct event_callback *cb, const struct recon_options *opt,
			  struct report *out)
{
	time_span(&cb->h, cb->duration_ns, opt, out);
	out->gc_ms = cb->gc_ns / 1e6;
	if (out->gc_ms > out->elapsed_ms)
		out->gc_ms = out->elapsed_ms;
	out->by_iteration = cb->scope == SCOPE_ITERATION;
}

/* ---- the loop's lag -------------------------------------------------------------------- */

/* Samples are taken at a steady rate: a callback's share of them is its share of the time. */
static unsigned samples_of(const struct recon_part *p)
{
	unsigned n = 0;

	for (size_t i = 0; i < p->set.n; i++)
		n += p->set.recs[i].ev->source == SOURCE_SAMPLE;
	return n;
}

/*
 * One callback's report. A fast callback (--all) with nothing left that could block is no
 * report, unless it is only named as a part of a slow iteration (drop_unblocked false).
 */
static int build_report(const struct event_callback *cb, const struct record_set *set,
			const struct recon_resolver *res, const struct recon_options *opt,
			bool drop_unblocked, struct report *out)
{
	const struct record *recs = set->recs;
	size_t n = set->n;
	struct named_stack *stacks = name_stacks(res, recs, n);
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (!stacks)
		goto out;
	ret = -ENOENT;
	if (n && outside_any_callback(res, stacks, n))
		goto out;
	time_callback(cb, opt, out);
	/* uvloop's callbacks, and iterations, are named from their stacks */
	if (!cb->ident_valid && n)
		attribute_from_stacks(res, stacks, n, out);
	else
		name_callback(&cb->ident, cb->ident_valid, out);
	ret = add_events(recs, stacks, n, opt, out);
	if (!ret && drop_unblocked && !out->exceeded && !out->n_events)
		ret = -ENOENT;
	if (!ret)
		ret = add_cpu_samples(stacks, n, opt, out);
	if (!ret)
		split_cpu_time(cb, out);
	out->omitted = set->omitted;
	out->omitted_ms = set->omitted_ns / 1e6;
out:
	free_stacks(stacks, n);
	if (ret)
		report_free(out);
	return ret;
}

int reconstruct_report(const struct event_callback *cb, const struct record_set *set,
		       const struct recon_resolver *res, const struct recon_options *opt,
		       struct report *out)
{
	return build_report(cb, set, res, opt, true, out);
}

/* A top callback as named report r names it, at where (copied: NULL when out of memory). */
static void name_top(const struct report *r, const char *where, double ms, struct report_top *top)
{
	top->is_task = r->is_task;
	memcpy(top->task_name, r->task_name, sizeof(top->task_name));
	memcpy(top->coro, r->coro, sizeof(top->coro));
	memcpy(top->callback, r->callback, sizeof(top->callback));
	top->entry_point = strdup(where);
	top->ms = ms;
}

/* The part's callback, named and located as its own report would be. */
static int describe_top(const struct recon_part *p, double ms, const struct recon_resolver *res,
			const struct recon_options *opt, struct report_top *top)
{
	struct report r;
	int ret = build_report(&p->cb, &p->set, res, opt, false, &r);

	if (ret)
		return ret;
	name_top(&r, report_entry_point(&r), ms, top);
	report_free(&r);
	return top->entry_point ? 0 : -ENOMEM;
}

int reconstruct_slow_iteration(const struct event_callback *it, const struct recon_part *parts,
			       size_t n, const struct recon_resolver *res,
			       const struct recon_options *opt, struct report *out)
{
	unsigned total = 0, taken[REPORT_MAX_TOP] = { 0 };
	size_t order[REPORT_MAX_TOP];

	memset(out, 0, sizeof(*out));
	time_callback(it, opt, out);
	out->slow_iteration = true;
	out->callbacks = n;
	snprintf(out->callback, sizeof(out->callback), "<loop iteration>");
	for (size_t i = 0; i < n; i++)
		total += samples_of(&parts[i]);
	/* the few most sampled, most first: a selection is plenty */
	for (size_t i = 0; i < n; i++) {
		unsigned c = samples_of(&parts[i]);
		size_t at = out->n_top < REPORT_MAX_TOP ? out->n_top++ : REPORT_MAX_TOP;

		while (at > 0 && taken[at - 1] < c) {
			if (at < REPORT_MAX_TOP) {
				taken[at] = taken[at - 1];
				order[at] = order[at - 1];
			}
			at--;
		}
		if (at < REPORT_MAX_TOP) {
			taken[at] = c;
			order[at] = i;
		}
	}
	for (size_t k = 0; k < out->n_top; k++) {
		double ms = total ? out->elapsed_ms * taken[k] / total : 0;

		if (describe_top(&parts[order[k]], ms, res, opt, &out->top[k])) {
			out->n_top = k + 1;
			report_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}

/* ---- the loop's lag, armed ------------------------------------------------------------- */

_Static_assert(AIOCOPD_ITER_TOPS <= REPORT_MAX_TOP, "every callback BPF kept must fit a report");

/*
 * Where a top callback is: its code at the line BPF found it at (a Task's coroutine where it
 * was when named, a function where it is defined); else its name, as a report without a
 * stack says it.
 */
static void locate_top(const struct iteration_top *t, const struct recon_resolver *res,
		       const struct report *named, double ms, struct report_top *top)
{
	char frame[1024] = "";
	struct py_location loc;

	if (t->ident.code) {
		res->locate(res->ctx, t->ident.code, t->ident.instr, &loc);
		if (strcmp(loc.file, "?"))
			format_frame(frame, sizeof(frame), loc.file, loc.line, loc.function);
	}
	name_top(named, frame[0] ? frame : report_entry_point(named), ms, top);
}

int reconstruct_lag_iteration(const struct event_iteration *ev, const struct recon_resolver *res,
			      const struct recon_options *opt, struct report *out)
{
	size_t n = ev->n_top < AIOCOPD_ITER_TOPS ? ev->n_top : AIOCOPD_ITER_TOPS;
	const struct iteration_top *order[AIOCOPD_ITER_TOPS];

	memset(out, 0, sizeof(*out));
	time_span(&ev->h, ev->duration_ns, opt, out);
	out->slow_iteration = true;
	out->callbacks = ev->callbacks;
	snprintf(out->callback, sizeof(out->callback), "<loop iteration>");
	/* BPF keeps them in no order: longest first */
	for (size_t i = 0; i < n; i++) {
		size_t at = i;

		for (; at > 0 && order[at - 1]->duration_ns < ev->top[i].duration_ns; at--)
			order[at] = order[at - 1];
		order[at] = &ev->top[i];
	}
	for (size_t k = 0; k < n; k++) {
		struct report named = {};

		name_callback(&order[k]->ident, order[k]->ident.callable != 0, &named);
		locate_top(order[k], res, &named, order[k]->duration_ns / 1e6, &out->top[k]);
		out->top[k].timed = true;
		out->n_top = k + 1;
		if (!out->top[k].entry_point) {
			report_free(out);
			return -ENOMEM;
		}
	}
	return 0;
}
