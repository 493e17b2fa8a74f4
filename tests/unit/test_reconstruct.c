/*
 * test_reconstruct.c - unit tests for src/reconstruct.c.
 *
 * Records are built by hand, the way BPF writes them, and reconstructed through a fake
 * resolver: a table of code objects, a few words of "target memory" and one str object. Like
 * pyresolver, the fake hands out names in a buffer its next lookup overwrites, so a report
 * that kept a name instead of copying it shows another frame's. Expected names, traces and
 * attributions are written out here from SPEC sections 2 and 3.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <cmocka.h>

#include "pylayout.h"
#include "reconstruct.h"
#include "records.h"
#include <asm/unistd.h>

#define MS		1000000ULL
#define MONO_START	(4242ULL * 1000000000ULL)
#define PID		0x7ffffff0	/* above any pid_max: /proc knows no such process */
#define STDLIB		"/usr/lib/python3.11/asyncio/"

/* Code objects of the fake target. */
enum {
	CODE_WORK = 0x1000,	/* the application's blocking call site */
	CODE_HANDLER,		/* the application's coroutine */
	CODE_ON_TIMER,		/* a plain call_later callback */
	CODE_DECODE,		/* standard library below the application */
	CODE_SHIM,		/* 3.13's __init__ shim, no source */
	CODE_HANDLE_RUN,
	CODE_RUN_ONCE,
	CODE_RUNNER,
	CODE_MODULE,
	CODE_GONE,		/* unreadable: its process exited */
	CODE_CORRUPT,		/* its co_firstlineno was overwritten: a line below 1 */
	CODE_RECURSE,		/* the application recursing deep below its callback */
	CODE_REDIS_READ,	/* a library installed as a package, doing the blocking */
	CODE_REDIS_CMD,
	CODE_DIST_LIB,		/* a Debian-packaged library */
	CODE_WORKER,		/* the application, calling the library */
};

struct fake_code {
	uint64_t code;
	const char *file, *function, *qualname;
	int line;
};

static const struct fake_code fake_codes[] = {
	{ CODE_WORK, "/srv/app.py", "work", "work", 7 },
	{ CODE_HANDLER, "/srv/app.py", "handler", "Server.handler", 12 },
	{ CODE_ON_TIMER, "/srv/app.py", "on_timer", "Server.on_timer", 20 },
	{ CODE_DECODE, "/usr/lib/python3.11/json/decoder.py", "decode", "JSONDecoder.decode", 337 },
	{ CODE_SHIM, "__init__", "__init__", "__init__", -1 },
	{ CODE_HANDLE_RUN, STDLIB "events.py", "_run", "Handle._run", 80 },
	{ CODE_RUN_ONCE, STDLIB "base_events.py", "_run_once", "BaseEventLoop._run_once", 1922 },
	{ CODE_RUNNER, STDLIB "runners.py", "run", "Runner.run", 118 },
	{ CODE_MODULE, "/srv/app.py", "<module>", "<module>", 30 },
	{ CODE_CORRUPT, "/srv/app.py", "corrupt", "corrupt", -1519441556 },
	{ CODE_RECURSE, "/srv/deep.py", "recurse", "recurse", 5 },
	{ CODE_REDIS_READ, "/venv/lib/python3.11/site-packages/redis/connection.py",
	  "_read_from_socket", "SocketBuffer._read_from_socket", 192 },
	{ CODE_REDIS_CMD, "/venv/lib/python3.11/site-packages/redis/client.py",
	  "execute_command", "Redis.execute_command", 533 },
	{ CODE_DIST_LIB, "/usr/lib/python3/dist-packages/yaml/reader.py", "read", "Reader.read", 9 },
	{ CODE_WORKER, "/srv/worker.py", "pop_job", "Worker.pop_job", 28 },
};

/* Target memory: the Handle that runs a Task step, down to the Task's name. */
enum {
	HANDLE = 0x10000,
	STEP_WRAPPER = 0x20000,
	TASK = 0x30000,
	CORO = 0x40000,
	TASK_NAME = 0x50000,
	STR_TYPE = 0x60000,
	INT_TYPE = 0x70000,
	OTHER_TYPE = 0x80000,	/* a type object that cannot be read */
};


struct fake_word {
	uint64_t addr, val;
};

struct fake_target {
	const struct py_version_layout *layout;
	struct fake_word words[16];
	size_t n_words;
	bool uvloop;
	unsigned uvloop_asked;
	char names[3][128];		/* the last frame's names, as pyresolver keeps them */
};

static void fake_locate(void *ctx, uint64_t code, uint64_t instr, struct py_location *loc)
{
	struct fake_target *t = ctx;
	const struct fake_code *c = NULL;

	for (size_t i = 0; i < sizeof(fake_codes) / sizeof(fake_codes[0]); i++)
		if (fake_codes[i].code == code)
			c = &fake_codes[i];
	snprintf(t->names[0], sizeof(t->names[0]), "%s", c ? c->file : "?");
	snprintf(t->names[1], sizeof(t->names[1]), "%s", c ? c->function : "?");
	snprintf(t->names[2], sizeof(t->names[2]), "%s", c ? c->qualname : "?");
	*loc = (struct py_location){ t->names[0], t->names[1], t->names[2], c ? c->line : -1 };
}

static int fake_read_u64(void *ctx, uint64_t addr, uint64_t *val)
{
	struct fake_target *t = ctx;

	for (size_t i = 0; i < t->n_words; i++)
		if (t->words[i].addr == addr) {
			*val = t->words[i].val;
			return 0;
		}
	return -EFAULT;
}

static int fake_read_str(void *ctx, uint64_t obj, char *buf, size_t bufsz)
{
	if (obj != TASK_NAME)
		return -EFAULT;
	snprintf(buf, bufsz, "the-sleeper");
	return 0;
}

static bool fake_uses_uvloop(void *ctx)
{
	struct fake_target *t = ctx;

	t->uvloop_asked++;
	return t->uvloop;
}

/* The word at addr becomes val, in place when it is already there. */
static void set_word(struct fake_target *t, uint64_t addr, uint64_t val)
{
	for (size_t i = 0; i < t->n_words; i++)
		if (t->words[i].addr == addr) {
			t->words[i].val = val;
			return;
		}
	assert_true(t->n_words < sizeof(t->words) / sizeof(t->words[0]));
	t->words[t->n_words++] = (struct fake_word){ addr, val };
}

/* ---- fixtures -------------------------------------------------------------------------- */

struct fixture {
	struct fake_target target;
	struct recon_resolver res;
	struct recon_options opt;
	struct event_callback cb;
	struct record recs[16];
	size_t n;
	uint64_t omitted, omitted_ns;	/* what the record set says was not itemised */
	struct report report;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->target.layout = pylayout_find(3, 11);
	f->res = (struct recon_resolver){ fake_locate, fake_read_u64, fake_read_str,
					  fake_uses_uvloop, &f->target, f->target.layout };
	f->opt = (struct recon_options){ .threshold_ms = 30, .trace_depth = 20 };
	f->cb.h = (struct event_header){ .type = EVENT_CALLBACK, .pid = PID, .tid = PID,
					 .ts_ns = MONO_START };
	f->cb.cb_seq = 1;
	f->cb.duration_ns = 62 * MS;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	report_free(&f->report);
	for (size_t i = 0; i < f->n; i++)
		free(f->recs[i].ev);
	free(f);
	return 0;
}

/* An armed callback that BPF named: a plain function. */
static void named_function(struct fixture *f, const char *qualname)
{
	f->cb.ident_valid = 1;
	f->cb.ident.kind = CB_FUNCTION;
	snprintf(f->cb.ident.qualname, sizeof(f->cb.ident.qualname), "%s", qualname);
}

/* An unarmed report: the whole loop iteration, no identity. */
static void whole_iteration(struct fixture *f)
{
	f->cb.ident_valid = 0;
	f->cb.scope = SCOPE_ITERATION;
}

static struct event_blocking *add_record(struct fixture *f, unsigned source, unsigned nr,
					 uint64_t duration_ns)
{
	struct event_blocking *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	assert_true(f->n < sizeof(f->recs) / sizeof(f->recs[0]));
	e->h = (struct event_header){ .type = EVENT_BLOCKING, .pid = PID, .tid = PID,
				      .ts_ns = MONO_START + f->n * MS };
	e->cb_seq = f->cb.cb_seq;
	e->source = source;
	e->nr = nr;
	e->duration_ns = duration_ns;
	f->recs[f->n++] = (struct record){ e, NULL };
	return e;
}

/* Frames innermost first, all run by the thread (no generator) at instruction 0x10. */
static void set_stack(struct event_blocking *e, const uint64_t *codes, unsigned n)
{
	e->n_frames = n;
	e->stack_end = STACK_WHOLE;
	for (unsigned i = 0; i < n; i++)
		e->frames[i] = (struct py_frame){ .code = codes[i], .instr = 0x10,
						  .addr = 0x900000 + i * 0x100 };
}

/* The loop's frames under an application call: work <- handler <- Handle._run <- ... */
static const uint64_t task_stack[] = { CODE_WORK, CODE_HANDLER, CODE_HANDLE_RUN, CODE_RUN_ONCE,
				       CODE_RUNNER, CODE_MODULE };

static void set_task_stack(struct fake_target *t, struct event_blocking *e, bool handle_alive)
{
	const struct py_version_layout *l = t->layout;
	struct py_frame *coro = &e->frames[1], *run = &e->frames[2];

	set_stack(e, task_stack, 6);
	coro->owner = l->user.frame_owner_generator;
	coro->addr = CORO + l->user.coro_iframe;
	run->first_local = HANDLE;
	set_word(t, HANDLE + l->bpf.handle_callback, STEP_WRAPPER);
	set_word(t, STEP_WRAPPER + l->bpf.stepwrapper_task, TASK);
	set_word(t, TASK + l->bpf.task_coro, handle_alive ? CORO : CORO + 0x1000);
	set_word(t, TASK + l->bpf.task_name, TASK_NAME);
	set_word(t, TASK_NAME + PY_OBJECT_TYPE, STR_TYPE);
	set_word(t, STR_TYPE + l->bpf.type_flags, Py_TPFLAGS_UNICODE_SUBCLASS);
}

/* Durations are sums of nanoseconds shown in milliseconds. */
static void assert_ms(double got, double want)
{
	assert_true(got > want - 1e-6 && got < want + 1e-6);
}

static int reconstruct(struct fixture *f)
{
	const struct record_set set = { f->recs, f->n, f->omitted, f->omitted_ns };

	return reconstruct_report(&f->cb, &set, &f->res, &f->opt, &f->report);
}

/* ---- operations ------------------------------------------------------------------------ */

static void test_audit_event_and_syscall_merge(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	struct fixture *f = *state;
	struct event_blocking *a = add_record(f, SOURCE_AUDIT, 0, 0);
	struct event_blocking *s = add_record(f, SOURCE_SYSCALL, __NR_openat, 2 * MS);
	const struct report_event *e;

	named_function(f, "Server.on_timer");
	snprintf(a->str, sizeof(a->str), "open");
	snprintf(a->arg_text[0], sizeof(a->arg_text[0]), "/srv/data.txt");
	snprintf(a->arg_text[1], sizeof(a->arg_text[1]), "r");
	set_stack(a, stack, 3);
	snprintf(s->str, sizeof(s->str), "/srv/data.txt");
	s->n_str = strlen(s->str) + 1;
	set_stack(s, stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_false(f->report.is_task);
	assert_string_equal(f->report.callback, "Server.on_timer");
	assert_int_equal(f->report.n_events, 1);
	e = &f->report.events[0];
	assert_string_equal(e->event, "open(/srv/data.txt, r)");
	assert_string_equal(e->syscall, "openat");
	assert_int_equal(e->category, CAT_FILE);
	assert_int_equal(e->severity, 10);
	assert_ms(e->duration_ms, 2);
	assert_int_equal(f->report.score, 10);
	assert_int_equal(f->report.level, LEVEL_MEDIUM);
	assert_true(f->report.exceeded);
	assert_false(f->report.by_iteration);
}

/* Fast repeats folded in BPF arrive with the next record, or with the callback's. */
static void test_folded_repeats_add_their_time(void **state)
{
	static const uint64_t read_site[] = { CODE_DECODE, CODE_WORK, CODE_HANDLE_RUN };
	static const uint64_t write_site[] = { CODE_WORK, CODE_HANDLE_RUN };
	struct fixture *f = *state;
	struct record_buffer *b = records_new();
	struct event_blocking *rd = add_record(f, SOURCE_SYSCALL, __NR_read, 1 * MS);
	struct event_blocking *wr = add_record(f, SOURCE_SYSCALL, __NR_write, 1 * MS);
	struct record_set set;

	assert_non_null(b);
	named_function(f, "Server.on_timer");
	rd->fd_mode = wr->fd_mode = S_IFIFO;
	rd->args[0] = 3;
	wr->args[0] = 4;
	set_stack(rd, read_site, 3);
	set_stack(wr, write_site, 2);
	wr->folded = 4;
	wr->folded_ns = 2 * MS;		/* more reads, before this write */
	f->cb.folded = 2;
	f->cb.folded_ns = 5 * MS;	/* more writes, before the callback ended */
	records_add(b, rd);
	records_add(b, wr);
	set = records_take(b, &f->cb);
	assert_int_equal(set.n, 2);
	assert_int_equal(reconstruct_report(&f->cb, &set, &f->res, &f->opt, &f->report), 0);
	assert_int_equal(f->report.n_events, 2);
	assert_string_equal(f->report.events[0].event, "read(fd 3)");
	assert_ms(f->report.events[0].duration_ms, 3);
	assert_string_equal(f->report.events[1].event, "write(fd 4)");
	assert_ms(f->report.events[1].duration_ms, 6);
	record_set_free(&set);
	records_free(b);
}

/* ---- attribution ----------------------------------------------------------------------- */

/* An unarmed report of a Task's step that slept: named through Handle._run. */
static void reconstruct_task_step(struct fixture *f, bool handle_alive)
{
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	whole_iteration(f);
	set_task_stack(&f->target, e, handle_alive);
	assert_int_equal(reconstruct(f), 0);
	assert_true(f->report.is_task);
	assert_string_equal(f->report.coro, "Server.handler");
	assert_string_equal(f->report.callback, "Task.__step");
	assert_true(f->report.by_iteration);
}

static void test_task_named_through_handle_run(void **state)
{
	struct fixture *f = *state;

	reconstruct_task_step(f, true);
	assert_string_equal(f->report.task_name, "the-sleeper");
	assert_string_equal(f->report.events[0].event, "sleep(0.06)");
	assert_int_equal(f->target.uvloop_asked, 0);	/* Handle._run showed: no need */
}

/*
 * A Task woken from a future runs as the builtin task_wakeup bound to it, not through a
 * TaskStepMethWrapper: the Task is the method's self (issue 11: the first report named one
 * task for every callback of the iteration).
 */
static void test_task_named_through_wakeup_method(void **state)
{
	const struct py_layout *l = &pylayout_find(3, 11)->bpf;
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	whole_iteration(f);
	set_task_stack(&f->target, e, true);
	/* the callback is a method whose self is the Task; its word at sw_task is not a Task */
	set_word(&f->target, HANDLE + l->handle_callback, STEP_WRAPPER + 0x800);
	set_word(&f->target, STEP_WRAPPER + 0x800 + l->stepwrapper_task, OTHER_TYPE);
	set_word(&f->target, STEP_WRAPPER + 0x800 + l->cfunc_self, TASK);
	assert_int_equal(reconstruct(f), 0);
	assert_true(f->report.is_task);
	assert_string_equal(f->report.task_name, "the-sleeper");
}

/* The Task's coroutine no longer owns the frame on the stack: its name is not trusted. */
static void test_task_name_unknown_when_objects_moved(void **state)
{
	struct fixture *f = *state;

	reconstruct_task_step(f, false);
	assert_string_equal(f->report.task_name, "?");
}

static void test_plain_callback_through_handle_run(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_ON_TIMER, CODE_HANDLE_RUN,
					  CODE_RUN_ONCE };
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	whole_iteration(f);
	set_stack(e, stack, 4);
	assert_int_equal(reconstruct(f), 0);
	assert_false(f->report.is_task);
	assert_string_equal(f->report.callback, "Server.on_timer");
	assert_string_equal(f->report.task_name, "");
}

/* uvloop shows no Handle._run: the callback is the frame right above the loop's machinery. */
static void test_uvloop_outermost_frame_fallback(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLER, CODE_RUNNER, CODE_MODULE };
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	f->target.uvloop = true;
	f->cb.ident_valid = 0;		/* armed, but uvloop's handle held no Python callable */
	set_stack(e, stack, 4);
	e->frames[1].owner = f->target.layout->user.frame_owner_generator;
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->target.uvloop_asked, 1);
	assert_true(f->report.is_task);
	assert_string_equal(f->report.task_name, "?");
	assert_string_equal(f->report.coro, "Server.handler");
	assert_string_equal(f->report.callback, "Task.__step");
	assert_false(f->report.by_iteration);
}

static void test_uvloop_plain_callback_fallback(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_ON_TIMER, CODE_RUNNER };
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	f->target.uvloop = true;
	set_stack(e, stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_false(f->report.is_task);
	assert_string_equal(f->report.callback, "Server.on_timer");
}

/* Between two asyncio.run calls: the stack shows no loop callback, so no report. */
static void test_outside_any_callback_dropped(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_MODULE };
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	whole_iteration(f);
	set_stack(e, stack, 2);
	assert_int_equal(reconstruct(f), -ENOENT);
	assert_int_equal(f->report.n_events, 0);
	assert_null(f->report.events);
	assert_int_equal(f->target.uvloop_asked, 1);
}

/* Code objects that could not be read prove nothing: the report stays. */
static void test_unreadable_stack_kept(void **state)
{
	static const uint64_t stack[] = { CODE_GONE, CODE_GONE + 0x100 };	/* both unknown */
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	whole_iteration(f);
	set_stack(e, stack, 2);
	assert_int_equal(reconstruct(f), 0);
	assert_string_equal(f->report.callback, "<loop iteration>");
	assert_int_equal(f->report.n_events, 1);
	/* nothing is known of the frame, its line included */
	assert_string_equal(f->report.events[0].entry_point, "?:?:?");
}

/*
 * A slow callback deeper than --trace-depth: BPF kept the innermost frames, so Handle._run
 * is not among them. That proves nothing: the report stays, says its stack was cut, and
 * points at the innermost frame (issue 9 item 2).
 */
static void deep_stack(struct fixture *f, unsigned depth)
{
	static const uint64_t deep[20] = { CODE_RECURSE, CODE_RECURSE, CODE_RECURSE,
					   CODE_RECURSE, CODE_RECURSE, CODE_RECURSE,
					   CODE_RECURSE, CODE_RECURSE, CODE_RECURSE,
					   CODE_RECURSE, CODE_RECURSE, CODE_RECURSE,
					   CODE_RECURSE, CODE_RECURSE, CODE_RECURSE,
					   CODE_RECURSE, CODE_RECURSE, CODE_RECURSE,
					   CODE_RECURSE, CODE_HANDLER };
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_clock_nanosleep, 50 * MS);

	f->opt.trace_depth = depth;
	set_stack(e, deep, depth);
	e->stack_end = STACK_CUT;
}

static void test_deep_stack_reported_cut_unarmed(void **state)
{
	struct fixture *f = *state;

	whole_iteration(f);
	deep_stack(f, 20);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 1);
	assert_string_equal(f->report.events[0].entry_point, "/srv/deep.py:5:recurse");
	assert_true(f->report.events[0].trace_cut);
	assert_int_equal(f->report.events[0].category, CAT_SLEEP);
}

static void test_deep_stack_reported_cut_armed(void **state)
{
	struct fixture *f = *state;
	char want[1024];
	size_t used = 0;

	f->cb.ident_valid = 1;
	f->cb.ident.kind = CB_TASK_STEP;
	snprintf(f->cb.ident.task_name, sizeof(f->cb.ident.task_name), "deep-task");
	snprintf(f->cb.ident.qualname, sizeof(f->cb.ident.qualname), "deep");
	deep_stack(f, 20);
	assert_int_equal(reconstruct(f), 0);
	assert_true(f->report.is_task);
	assert_string_equal(f->report.task_name, "deep-task");
	assert_true(f->report.events[0].trace_cut);
	/* every frame kept is in the trace, whole: the trace depth, not a fixed few */
	for (unsigned i = 0; i < 19; i++)
		used += snprintf(want + used, sizeof(want) - used, "/srv/deep.py:5:recurse <- ");
	snprintf(want + used, sizeof(want) - used, "/srv/app.py:12:handler");
	assert_string_equal(f->report.events[0].trace, want);
}

/* A whole stack of exactly --trace-depth frames is not cut. */
static void test_whole_stack_at_depth_not_cut(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	f->opt.trace_depth = 3;
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_false(f->report.events[0].trace_cut);
}

/*
 * A target that corrupts a frame pointer: the walk stops at a frame it cannot read, or goes
 * on through frames that name nothing, or ends early at a NULL. None of these proves the
 * stall ran outside a callback.
 */
static void test_broken_stack_kept(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_MODULE };
	struct fixture *f = *state;
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS);

	whole_iteration(f);
	set_stack(e, stack, 2);
	e->stack_end = STACK_BROKEN;
	assert_int_equal(reconstruct(f), 0);
	assert_true(f->report.events[0].trace_cut);
}

static void test_stack_through_garbage_kept(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_GONE, CODE_MODULE };
	struct fixture *f = *state;

	whole_iteration(f);
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 1);
}

static void test_stack_ending_early_kept(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLER };
	struct fixture *f = *state;

	whole_iteration(f);
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), stack, 2);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 1);
}

/* ---- values that cannot be right -------------------------------------------------------- */

/* A corrupt co_firstlineno gives lines below 1: shown as unknown, not as a number. */
static void test_impossible_line_shown_unknown(void **state)
{
	static const uint64_t stack[] = { CODE_CORRUPT, CODE_HANDLE_RUN };
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), stack, 2);
	assert_int_equal(reconstruct(f), 0);
	assert_string_equal(f->report.events[0].entry_point, "/srv/app.py:?:corrupt");
	assert_string_equal(f->report.events[0].trace,
			    "/srv/app.py:?:corrupt <- " STDLIB "events.py:80:_run");
}

/* BPF found no str where the Task keeps its name: the report does not make one up. */
static void test_task_name_not_a_str_is_unknown(void **state)
{
	struct fixture *f = *state;

	f->cb.ident_valid = 1;
	f->cb.ident.kind = CB_TASK_STEP;
	f->cb.ident.name_kind = TASK_NAME_UNKNOWN;
	memcpy(f->cb.ident.task_name, "\x15\x01junk", 7);
	snprintf(f->cb.ident.qualname, sizeof(f->cb.ident.qualname), "handler");
	assert_int_equal(reconstruct(f), 0);
	assert_string_equal(f->report.task_name, "?");
}

/*
 * Through Handle._run: an int name is 3.12's counter (read as a str, its digit was a raw
 * 0x15 byte in text); a type that cannot be read names nothing. (pyresolver_read_str
 * refuses objects that are not str: test_pyresolve.c.)
 */
static void test_task_name_through_handle_checks_type(void **state)
{
	struct fixture *f = *state;
	const struct py_layout *l = &f->target.layout->bpf;

	reconstruct_task_step(f, true);
	assert_string_equal(f->report.task_name, "the-sleeper");
	report_free(&f->report);
	/* the same Task, its name now an int object */
	set_word(&f->target, TASK_NAME + PY_OBJECT_TYPE, INT_TYPE);
	set_word(&f->target, INT_TYPE + l->type_flags, Py_TPFLAGS_LONG_SUBCLASS);
	set_word(&f->target, TASK_NAME + l->long_digit, 21);
	assert_int_equal(reconstruct(f), 0);
	assert_string_equal(f->report.task_name, "Task-21");
	report_free(&f->report);
	/* a type whose flags cannot be read */
	set_word(&f->target, TASK_NAME + PY_OBJECT_TYPE, OTHER_TYPE);
	assert_int_equal(reconstruct(f), 0);
	assert_string_equal(f->report.task_name, "?");
}

/* A sleep is off CPU: a callback that slept 60 of its 62 ms was on CPU at most 2 ms. */
static void test_oncpu_bounded_by_sleep(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN };
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	f->cb.oncpu_ns = 58 * MS;	/* a missed context switch counted the sleep */
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_clock_nanosleep, 60 * MS), stack, 2);
	assert_int_equal(reconstruct(f), 0);
	assert_ms(f->report.oncpu_ms, 2);
	assert_ms(f->report.offcpu_ms, 60);
}

static void test_oncpu_bounded_by_wall_time(void **state)
{
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	f->cb.oncpu_ns = 90 * MS;
	assert_int_equal(reconstruct(f), 0);
	assert_ms(f->report.oncpu_ms, 62);
	assert_ms(f->report.offcpu_ms, 0);
}

/* The scheduler's preemption time is part of the off-CPU time, never more than it. */
static void test_preempted_within_offcpu(void **state)
{
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	f->cb.oncpu_ns = 20 * MS;
	f->cb.preempted_ns = 35 * MS;
	assert_int_equal(reconstruct(f), 0);
	assert_ms(f->report.offcpu_ms, 42);
	assert_ms(f->report.preempted_ms, 35);
	assert_string_equal(report_reason(&f->report), "preempted");
	report_free(&f->report);
	f->cb.preempted_ns = 50 * MS;	/* a switch-in that was missed: held to the off-CPU time */
	assert_int_equal(reconstruct(f), 0);
	assert_ms(f->report.preempted_ms, 42);
}

/* What the record set could not itemise reaches the report (issue 9 item 6). */
static void test_omitted_operations_reported(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN };
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_newfstatat, 1000), stack, 2);
	f->omitted = 4946;
	f->omitted_ns = 9500 * 1000;
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.omitted, 4946);
	assert_ms(f->report.omitted_ms, 9.5);
}

/* ---- stacks ---------------------------------------------------------------------------- */

static void test_cpu_samples_grouped_most_frequent_first(void **state)
{
	static const uint64_t a[] = { CODE_WORK, CODE_HANDLE_RUN };
	static const uint64_t b[] = { CODE_DECODE, CODE_WORK, CODE_HANDLE_RUN };
	static const uint64_t c[] = { CODE_ON_TIMER, CODE_HANDLE_RUN };
	static const uint64_t *const order[] = { a, b, c, b, c, b };
	static const unsigned depth[] = { 2, 3, 2, 3, 2, 3 };
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	for (size_t i = 0; i < 6; i++)
		set_stack(add_record(f, SOURCE_SAMPLE, 0, 0), order[i], depth[i]);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 0);	/* samples are no operations */
	assert_int_equal(f->report.cpu_samples, 6);
	assert_int_equal(f->report.n_cpu, 3);
	assert_int_equal(f->report.cpu[0].count, 3);
	assert_string_equal(f->report.cpu[0].entry_point, "/srv/app.py:7:work");
	assert_string_equal(f->report.cpu[0].trace, "/usr/lib/python3.11/json/decoder.py:337:"
			    "decode <- /srv/app.py:7:work <- " STDLIB "events.py:80:_run");
	assert_int_equal(f->report.cpu[1].count, 2);
	assert_string_equal(f->report.cpu[1].entry_point, "/srv/app.py:20:on_timer");
	assert_int_equal(f->report.cpu[2].count, 1);
	assert_string_equal(f->report.cpu[2].entry_point, "/srv/app.py:7:work");
}

static void test_trace_depth_skips_shim_frames(void **state)
{
	static const uint64_t stack[] = { CODE_SHIM, CODE_DECODE, CODE_WORK, CODE_SHIM,
					  CODE_HANDLE_RUN, CODE_RUN_ONCE, CODE_RUNNER,
					  CODE_MODULE };
	struct fixture *f = *state;
	const struct report_event *e;

	named_function(f, "Server.on_timer");
	f->opt.trace_depth = 5;
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), stack, 8);
	assert_int_equal(reconstruct(f), 0);
	e = &f->report.events[0];
	assert_string_equal(e->trace, "/usr/lib/python3.11/json/decoder.py:337:decode <- "
			    "/srv/app.py:7:work <- " STDLIB "events.py:80:_run <- "
			    STDLIB "base_events.py:1922:_run_once <- " STDLIB "runners.py:118:run");
}

static void test_entry_point_first_frame_outside_stdlib(void **state)
{
	static const uint64_t mixed[] = { CODE_DECODE, CODE_WORK, CODE_HANDLE_RUN };
	static const uint64_t stdlib[] = { CODE_DECODE, CODE_HANDLE_RUN };
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), mixed, 3);
	f->recs[0].ev->frames[0].instr = 0x20;	/* another site: two operations */
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 60 * MS), stdlib, 2);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 2);
	assert_string_equal(f->report.events[0].entry_point, "/srv/app.py:7:work");
	/* nothing of the application's on the stack: the innermost frame */
	assert_string_equal(f->report.events[1].entry_point,
			    "/usr/lib/python3.11/json/decoder.py:337:decode");
}

/* A library installed as a package did the blocking: the application's frame that called it. */
static void test_entry_point_skips_installed_packages(void **state)
{
	static const uint64_t redis[] = { CODE_REDIS_READ, CODE_REDIS_CMD, CODE_WORKER,
					  CODE_HANDLE_RUN };
	static const uint64_t packaged[] = { CODE_DECODE, CODE_DIST_LIB, CODE_WORKER };
	static const uint64_t only_libraries[] = { CODE_DECODE, CODE_REDIS_READ, CODE_REDIS_CMD,
						   CODE_HANDLE_RUN };
	struct fixture *f = *state;

	named_function(f, "Worker.pop_job");
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_recvfrom, 60 * MS), redis, 4);
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_read, 40 * MS), packaged, 3);
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 40 * MS), only_libraries, 4);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 3);
	assert_string_equal(f->report.events[0].entry_point, "/srv/worker.py:28:pop_job");
	assert_string_equal(f->report.events[1].entry_point, "/srv/worker.py:28:pop_job");
	/* every frame outside the standard library is third-party: the innermost of those */
	assert_string_equal(f->report.events[2].entry_point,
			    "/venv/lib/python3.11/site-packages/redis/connection.py:192:"
			    "_read_from_socket");
}

/* --app-path names the application's files, even inside a site-packages (an installed app). */
static void test_entry_point_app_path(void **state)
{
	static const uint64_t redis[] = { CODE_REDIS_READ, CODE_REDIS_CMD, CODE_WORKER,
					  CODE_HANDLE_RUN };
	static const uint64_t elsewhere[] = { CODE_DECODE, CODE_WORK, CODE_HANDLE_RUN };
	struct fixture *f = *state;

	f->opt.app_paths[0] = "/nowhere/";
	f->opt.app_paths[1] = "/venv/lib/python3.11/site-packages/redis/cl";
	f->opt.n_app_paths = 2;
	named_function(f, "Worker.pop_job");
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_recvfrom, 60 * MS), redis, 4);
	set_stack(add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 40 * MS), elsewhere, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 2);
	assert_string_equal(f->report.events[0].entry_point,
			    "/venv/lib/python3.11/site-packages/redis/client.py:533:execute_command");
	/* no frame under --app-path: the rule without it */
	assert_string_equal(f->report.events[1].entry_point, "/srv/app.py:7:work");
}

/* ---- a slow iteration split by callback ------------------------------------------------- */

static struct recon_part *split_lag(struct fixture *f, size_t *n_parts, bool *lag)
{
	const struct record_set set = { f->recs, f->n, f->omitted, f->omitted_ns };
	struct recon_part *parts = NULL;

	assert_int_equal(reconstruct_split_iteration(&f->cb, &set, &f->res, &f->opt, &parts,
						     n_parts, lag), 0);
	assert_non_null(parts);
	return parts;
}

static struct recon_part *split(struct fixture *f, size_t *n_parts)
{
	bool lag;
	struct recon_part *parts = split_lag(f, n_parts, &lag);

	assert_false(lag);
	return parts;
}

static struct report *reconstruct_part(struct fixture *f, const struct recon_part *p)
{
	report_free(&f->report);
	assert_int_equal(reconstruct_report(&p->cb, &p->set, &f->res, &f->opt, &f->report), 0);
	return &f->report;
}

/*
 * Unarmed, one slow iteration ran a timer callback that slept and a Task that waited in
 * recv: two reports, each with its own name and only its own events (issue 11: a 194 ms
 * report blamed on one task held 132 ms of another task's recv).
 */
static void test_iteration_split_per_callback(void **state)
{
	static const uint64_t timer[] = { CODE_ON_TIMER, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	struct fixture *f = *state;
	struct event_blocking *sleep = add_record(f, SOURCE_SYSCALL, __NR_nanosleep, 40 * MS);
	struct event_blocking *recv = add_record(f, SOURCE_SYSCALL, __NR_recvfrom, 132 * MS);
	struct event_blocking *read = add_record(f, SOURCE_SYSCALL, __NR_read, 5 * MS);
	struct recon_part *parts;
	struct report *r;
	size_t n;

	whole_iteration(f);
	f->cb.duration_ns = 194 * MS;
	f->cb.oncpu_ns = 10 * MS;
	/* BPF named the iteration from a stack of the Task's, while it was alive */
	f->cb.ident_valid = 1;
	f->cb.ident.kind = CB_TASK_WAKEUP;
	snprintf(f->cb.ident.task_name, sizeof(f->cb.ident.task_name), "named-by-bpf");
	snprintf(f->cb.ident.qualname, sizeof(f->cb.ident.qualname), "Server.handler");
	set_stack(sleep, timer, 3);
	sleep->frames[1].first_local = HANDLE + 0x100;	/* another Handle than the Task's */
	set_task_stack(&f->target, recv, true);
	recv->h.ts_ns = MONO_START + 41 * MS;
	set_task_stack(&f->target, read, true);
	read->h.ts_ns = MONO_START + 174 * MS;
	read->frames[0].instr = 0x20;
	parts = split(f, &n);
	assert_int_equal(n, 2);
	assert_int_equal(parts[0].set.n, 1);
	assert_ptr_equal(parts[0].set.recs[0].ev, sleep);
	assert_int_equal(parts[0].cb.duration_ns, 40 * MS);
	assert_int_equal(parts[1].set.n, 2);
	assert_int_equal(parts[1].cb.h.ts_ns, MONO_START + 41 * MS);
	assert_int_equal(parts[1].cb.duration_ns, 138 * MS);
	assert_int_equal(parts[1].cb.oncpu_ns, 1 * MS);	/* what its operations leave */
	r = reconstruct_part(f, &parts[0]);
	assert_false(r->is_task);
	assert_string_equal(r->callback, "Server.on_timer");
	assert_int_equal(r->n_events, 1);
	assert_string_equal(r->events[0].syscall, "nanosleep");
	assert_ms(r->elapsed_ms, 40);
	r = reconstruct_part(f, &parts[1]);
	assert_true(r->is_task);
	assert_string_equal(r->task_name, "named-by-bpf");
	assert_string_equal(r->coro, "Server.handler");
	assert_int_equal(r->n_events, 2);
	assert_string_equal(r->events[0].syscall, "recvfrom");
	assert_true(r->by_iteration);
	recon_parts_free(parts, n);
}

/* One of the callbacks a slow_iteration names: where, how long, and whether timed or estimated. */
static void assert_top(const struct report_top *t, const char *where, double ms, bool timed)
{
	assert_string_equal(t->entry_point, where);
	assert_ms(t->ms, ms);
	assert_int_equal(t->timed, timed);
}

/*
 * Many small callbacks made the iteration slow, none by itself: the CPU samples spread over
 * them name no slow callback but the loop's lag, with the callbacks that took most of it
 * (issue 11: 1,500 small tasks made timers 80 ms late).
 */
static void test_iteration_of_small_callbacks_is_lag(void **state)
{
	static const uint64_t timer[] = { CODE_ON_TIMER, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	static const uint64_t task[] = { CODE_HANDLER, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	struct fixture *f = *state;
	struct recon_part *parts;
	struct report *r = &f->report;
	bool lag;
	size_t n;

	whole_iteration(f);
	f->cb.duration_ns = 80 * MS;
	for (unsigned i = 0; i < 8; i++) {
		struct event_blocking *e = add_record(f, SOURCE_SAMPLE, 0, 0);

		/* one timer callback has three samples: the most of the time */
		set_stack(e, i < 3 ? timer : task, 3);
		e->frames[1].first_local = HANDLE + 0x100 * (i < 3 ? 1 : i);
		e->h.ts_ns = MONO_START + (20 + 7 * i) * MS;
	}
	parts = split_lag(f, &n, &lag);
	assert_true(lag);
	assert_int_equal(n, 6);
	assert_int_equal(reconstruct_slow_iteration(&f->cb, parts, n, &f->res, &f->opt, r), 0);
	assert_true(r->slow_iteration);
	assert_int_equal(r->callbacks, 6);
	assert_ms(r->elapsed_ms, 80);
	assert_int_equal(r->n_top, REPORT_MAX_TOP);
	assert_false(r->top[0].is_task);
	assert_string_equal(r->top[0].callback, "Server.on_timer");
	assert_top(&r->top[0], "/srv/app.py:20:on_timer", 30, false);
	assert_top(&r->top[1], "/srv/app.py:12:handler", 10, false);
	recon_parts_free(parts, n);
}

/* A callback BPF kept as one of the longest of an armed iteration. */
static void set_top(struct iteration_top *t, uint64_t ms, unsigned kind, const char *qualname,
		    uint64_t code)
{
	memset(t, 0, sizeof(*t));
	t->duration_ns = ms * MS;
	t->ident.kind = kind;
	t->ident.callable = HANDLE + ms;
	t->ident.code = code;
	snprintf(t->ident.qualname, sizeof(t->ident.qualname), "%s", qualname);
}

/*
 * Armed, BPF counted the iteration's callbacks and timed the longest it named: the report
 * lists them longest first, exactly timed, each where its code is, or by its name when the
 * code cannot be read (the function is gone).
 */
static void test_armed_lag_names_the_longest_callbacks(void **state)
{
	struct fixture *f = *state;
	struct event_iteration ev = { .h = f->cb.h, .duration_ns = 95 * MS, .callbacks = 1500,
				      .lag = 1, .n_top = 3 };
	struct report *r = &f->report;

	ev.h.type = EVENT_ITERATION;
	set_top(&ev.top[0], 4, CB_FUNCTION, "Server.on_timer", CODE_ON_TIMER);
	set_top(&ev.top[1], 9, CB_TASK_STEP, "Server.handler", CODE_HANDLER);
	ev.top[1].ident.name_kind = TASK_NAME_INT;
	ev.top[1].ident.name_int = 7;
	set_top(&ev.top[2], 6, CB_FUNCTION, "vanished", CODE_GONE);
	assert_int_equal(reconstruct_lag_iteration(&ev, &f->res, &f->opt, r), 0);
	assert_true(r->slow_iteration);
	assert_true(r->exceeded);
	assert_int_equal(r->callbacks, 1500);
	assert_ms(r->elapsed_ms, 95);
	assert_int_equal(r->pid, PID);
	assert_int_equal(r->start_ns, MONO_START);
	assert_int_equal(r->n_top, 3);
	assert_true(r->top[0].is_task);
	assert_string_equal(r->top[0].task_name, "Task-7");
	assert_string_equal(r->top[0].coro, "Server.handler");
	assert_top(&r->top[0], "/srv/app.py:12:handler", 9, true);
	assert_false(r->top[1].is_task);
	assert_string_equal(r->top[1].callback, "vanished");
	assert_top(&r->top[1], "vanished", 6, true);
	assert_top(&r->top[2], "/srv/app.py:20:on_timer", 4, true);
}

/* No callback of the lag was named (all short, none switched out): the count alone. */
static void test_armed_lag_without_names(void **state)
{
	struct fixture *f = *state;
	struct event_iteration ev = { .h = f->cb.h, .duration_ns = 40 * MS, .callbacks = 300,
				      .lag = 1, .n_top = 0 };
	struct report *r = &f->report;

	/* what n_top does not count is not read, whatever it holds */
	set_top(&ev.top[0], 4, CB_FUNCTION, "stale", CODE_ON_TIMER);
	assert_int_equal(reconstruct_lag_iteration(&ev, &f->res, &f->opt, r), 0);
	assert_true(r->slow_iteration);
	assert_int_equal(r->callbacks, 300);
	assert_int_equal(r->n_top, 0);
}

/* One callback in the iteration (or none told apart): the iteration is its report, unchanged. */
static void test_iteration_of_one_callback_unchanged(void **state)
{
	struct fixture *f = *state;
	struct event_blocking *a = add_record(f, SOURCE_SAMPLE, 0, 0);
	struct event_blocking *b = add_record(f, SOURCE_SAMPLE, 0, 0);
	struct recon_part *parts;
	size_t n;

	whole_iteration(f);
	f->omitted = 3;
	set_task_stack(&f->target, a, true);
	set_task_stack(&f->target, b, true);
	b->n_frames = 1;	/* cut: goes with the callback before it */
	parts = split(f, &n);
	assert_int_equal(n, 1);
	assert_int_equal(parts[0].set.n, 2);
	assert_int_equal(parts[0].set.omitted, 3);
	assert_int_equal(parts[0].cb.duration_ns, 62 * MS);
	assert_int_equal(parts[0].cb.h.ts_ns, MONO_START);
	recon_parts_free(parts, n);
}

/* ---- fd names -------------------------------------------------------------------------- */

static struct event_blocking *fd_record(struct fixture *f, unsigned nr, int fd,
					const char *path, uint64_t instr)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN };
	struct event_blocking *e = add_record(f, SOURCE_SYSCALL, nr, 1 * MS);

	set_stack(e, stack, 2);
	e->frames[0].instr = instr;
	if (path) {
		e->ret = fd;
		e->n_str = snprintf(e->str, sizeof(e->str), "%s", path) + 1;
	} else {
		e->args[0] = fd;
		e->fd = fd;	/* BPF names the fd it read the file of */
		e->fd_mode = S_IFREG;
	}
	return e;
}

/* The name an fd had when a record used it, not the one a reused number has later. */
static void test_fd_names_captured_at_record_time(void **state)
{
	static const char *const want[] = { "open(/srv/app.db)", "read(/srv/app.db)",
					    "open(/srv/app.log)", "write(/srv/app.log)" };
	struct fixture *f = *state;
	struct record_buffer *b = records_new();
	struct record_set set;

	assert_non_null(b);
	named_function(f, "Server.on_timer");
	fd_record(f, __NR_openat, 5, "/srv/app.db", 0x10);
	fd_record(f, __NR_read, 5, NULL, 0x20);
	fd_record(f, __NR_openat, 5, "/srv/app.log", 0x30);	/* closed and reopened */
	fd_record(f, __NR_write, 5, NULL, 0x40);
	for (size_t i = 0; i < f->n; i++)
		records_add(b, f->recs[i].ev);
	set = records_take(b, &f->cb);
	assert_int_equal(set.n, 4);
	assert_int_equal(reconstruct_report(&f->cb, &set, &f->res, &f->opt, &f->report), 0);
	assert_int_equal(f->report.n_events, 4);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(f->report.events[i].event, want[i]);
	assert_int_equal(f->report.events[1].category, CAT_DATABASE);
	assert_int_equal(f->report.events[3].category, CAT_FILE);
	record_set_free(&set);
	records_free(b);
}

/* ---- SPEC 4: severity ------------------------------------------------------------------ */

/* A CPU-bound callback: no event, its level from the stall rule alone (threshold 30 ms). */
static void test_cpu_bound_stall_levels(void **state)
{
	struct fixture *f = *state;

	named_function(f, "Server.on_timer");
	f->cb.duration_ns = 100 * MS;
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 0);
	assert_int_equal(f->report.score, 0);
	assert_int_equal(f->report.level, LEVEL_MEDIUM);
	report_free(&f->report);
	f->cb.duration_ns = 150 * MS;
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.score, 0);
	assert_int_equal(f->report.level, LEVEL_HIGH);
	report_free(&f->report);
	f->cb.duration_ns = 45 * MS;
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.level, LEVEL_LOW);
}

/* asyncio's own connect, seen under --all: the audit event alone is no blocking event. */
static void test_nonblocking_connect_is_no_event(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	struct fixture *f = *state;
	struct event_blocking *a = add_record(f, SOURCE_AUDIT, 0, 0);

	named_function(f, "Server.on_timer");
	f->cb.duration_ns = MS / 2;
	snprintf(a->str, sizeof(a->str), "socket.connect");
	snprintf(a->arg_text[0], sizeof(a->arg_text[0]), "socket");
	snprintf(a->arg_text[1], sizeof(a->arg_text[1]), "tuple");
	set_stack(a, stack, 3);
	/* a fast callback (reported under --all for its operations) with none left: no report */
	assert_int_equal(reconstruct(f), -ENOENT);
	/* a slow one is still reported, with no event */
	f->cb.duration_ns = 40 * MS;
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 0);
	assert_int_equal(f->report.score, 0);
	assert_int_equal(f->report.level, LEVEL_LOW);
}

/* A pipe write that alone took the threshold weighs 50, in the event and in the score. */
static void test_long_event_weighs_50(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	struct fixture *f = *state;
	struct event_blocking *w = add_record(f, SOURCE_SYSCALL, __NR_write, 40 * MS);

	named_function(f, "Server.on_timer");
	f->cb.duration_ns = 45 * MS;
	w->fd_mode = S_IFIFO;
	w->args[0] = 2;
	set_stack(w, stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 1);
	assert_int_equal(f->report.events[0].severity, 50);
	assert_int_equal(f->report.score, 50);
	assert_int_equal(f->report.level, LEVEL_HIGH);
}

/* A timeout socket's wait: the poll BPF read the fd and peer of, 61 ms, is a network wait. */
static void test_poll_wait_names_the_peer(void **state)
{
	static const uint64_t stack[] = { CODE_WORK, CODE_HANDLE_RUN, CODE_RUN_ONCE };
	static const uint8_t loopback[4] = { 127, 0, 0, 1 };
	struct fixture *f = *state;
	struct event_blocking *p = add_record(f, SOURCE_SYSCALL, __NR_poll, 61 * MS);

	named_function(f, "Server.on_timer");
	p->args[1] = 1;
	p->fd = 7;
	p->fd_mode = S_IFSOCK;
	p->peer_family = AF_INET;
	p->peer_port = htons(9101);
	memcpy(p->peer_addr, loopback, sizeof(loopback));
	set_stack(p, stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 1);
	assert_string_equal(f->report.events[0].event, "poll(socket 127.0.0.1:9101)");
	assert_int_equal(f->report.events[0].category, CAT_NETWORK);
	assert_int_equal(f->report.events[0].severity, 50);	/* it took the threshold */
	assert_int_equal(f->report.level, LEVEL_HIGH);
}

/* redis-py's frames on the stack make its socket's wait a database wait. */
static void test_driver_stack_makes_a_database_wait(void **state)
{
	static const uint64_t stack[] = { CODE_REDIS_READ, CODE_WORK, CODE_HANDLE_RUN };
	struct fixture *f = *state;
	struct event_blocking *r = add_record(f, SOURCE_SYSCALL, __NR_recvfrom, 5 * MS);

	named_function(f, "Server.on_timer");
	r->fd = 7;
	r->args[0] = 7;
	r->fd_mode = S_IFSOCK;
	set_stack(r, stack, 3);
	assert_int_equal(reconstruct(f), 0);
	assert_int_equal(f->report.n_events, 1);
	assert_string_equal(f->report.events[0].event, "recvfrom(fd 7)");
	assert_int_equal(f->report.events[0].category, CAT_DATABASE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_audit_event_and_syscall_merge, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_folded_repeats_add_their_time, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_named_through_handle_run, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_named_through_wakeup_method, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_name_unknown_when_objects_moved, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_plain_callback_through_handle_run, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uvloop_outermost_frame_fallback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_uvloop_plain_callback_fallback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_outside_any_callback_dropped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unreadable_stack_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deep_stack_reported_cut_unarmed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_deep_stack_reported_cut_armed, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_whole_stack_at_depth_not_cut, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_broken_stack_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_through_garbage_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_ending_early_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_impossible_line_shown_unknown, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_name_not_a_str_is_unknown, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_task_name_through_handle_checks_type, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_oncpu_bounded_by_sleep, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oncpu_bounded_by_wall_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preempted_within_offcpu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_omitted_operations_reported, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cpu_samples_grouped_most_frequent_first,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_trace_depth_skips_shim_frames, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_entry_point_first_frame_outside_stdlib,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_entry_point_skips_installed_packages, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_entry_point_app_path, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iteration_split_per_callback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iteration_of_small_callbacks_is_lag, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_armed_lag_names_the_longest_callbacks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_armed_lag_without_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_iteration_of_one_callback_unchanged, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_fd_names_captured_at_record_time, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_cpu_bound_stall_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonblocking_connect_is_no_event, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_long_event_weighs_50, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poll_wait_names_the_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_stack_makes_a_database_wait, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
