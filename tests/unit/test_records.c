/*
 * test_records.c - unit tests for src/records.c.
 *
 * Records go in the way the ring buffer hands them over (one thread's, in order, each under
 * its callback's sequence number) and come out per callback. What the buffer holds is read
 * through records_stats: room grows with the records of a callback and goes with them, a
 * forgotten thread or process leaves nothing, and every record that misses its report is
 * counted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <setjmp.h>
#include <cmocka.h>

#include "records.h"
#include <asm/unistd.h>

#define PID_A		0x7fff0000	/* above any pid_max: /proc knows no such process */
#define PID_B		0x7fff1000

static struct event_blocking ev;	/* too big for the stack of a test, reused */

static const struct event_blocking *record(pid_t pid, pid_t tid, uint64_t cb_seq,
					   unsigned n_frames)
{
	memset(&ev, 0, sizeof(ev));
	ev.h = (struct event_header){ .type = EVENT_BLOCKING, .pid = pid, .tid = tid };
	ev.cb_seq = cb_seq;
	ev.source = SOURCE_SYSCALL;
	ev.nr = __NR_nanosleep;
	ev.n_frames = n_frames;
	for (unsigned i = 0; i < n_frames && i < AIOCOPD_MAX_FRAMES; i++)
		ev.frames[i].code = 0x1000 + i;
	return &ev;
}

static const struct event_blocking *opened(pid_t pid, int fd, const char *path)
{
	record(pid, pid, 1, 0);
	ev.nr = __NR_openat;
	ev.ret = fd;
	ev.n_str = snprintf(ev.str, sizeof(ev.str), "%s", path) + 1;
	return &ev;
}

static const struct event_blocking *read_fd(pid_t pid, int fd)
{
	record(pid, pid, 1, 0);
	ev.nr = __NR_read;
	ev.args[0] = fd;
	ev.fd = fd;		/* BPF names the fd it read the file of */
	ev.fd_mode = S_IFREG;
	return &ev;
}

static struct event_callback callback_of(pid_t pid, pid_t tid, uint64_t cb_seq)
{
	return (struct event_callback){
		.h = { .type = EVENT_CALLBACK, .pid = pid, .tid = tid }, .cb_seq = cb_seq };
}

static struct records_stats stats_of(const struct record_buffer *b)
{
	struct records_stats st;

	records_stats(b, &st);
	return st;
}

static int setup(void **state)
{
	*state = records_new();
	return *state ? 0 : -1;
}

static int teardown(void **state)
{
	records_free(*state);
	return 0;
}

static void test_room_grows_to_the_cap(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback cb = callback_of(PID_A, PID_A, 7);
	struct record_set set;

	records_add(b, record(PID_A, PID_A, 7, 3));
	assert_int_equal(stats_of(b).records, 1);
	assert_true(stats_of(b).slots >= 1 && stats_of(b).slots <= 8);
	for (int i = 1; i < AIOCOPD_MAX_PENDING + 10; i++)
		records_add(b, record(PID_A, PID_A, 7, 3));
	assert_int_equal(stats_of(b).records, AIOCOPD_MAX_PENDING);
	assert_int_equal(stats_of(b).slots, AIOCOPD_MAX_PENDING);
	assert_int_equal(stats_of(b).dropped, 10);
	set = records_take(b, &cb);
	assert_int_equal(set.n, AIOCOPD_MAX_PENDING);
	assert_int_equal(set.recs[0].ev->n_frames, 3);
	assert_int_equal(set.recs[0].ev->frames[2].code, 0x1002);
	/* an idle thread holds no room */
	assert_int_equal(stats_of(b).threads, 1);
	assert_int_equal(stats_of(b).records, 0);
	assert_int_equal(stats_of(b).slots, 0);
	record_set_free(&set);
}

static void test_records_in_arrival_order(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback cb = callback_of(PID_A, PID_A, 1);
	struct record_set set;

	for (unsigned i = 0; i < 5; i++) {
		record(PID_A, PID_A, 1, 1);
		ev.h.ts_ns = 100 + i;
		records_add(b, &ev);
	}
	set = records_take(b, &cb);
	assert_int_equal(set.n, 5);
	for (unsigned i = 0; i < 5; i++)
		assert_int_equal(set.recs[i].ev->h.ts_ns, 100 + i);
	record_set_free(&set);
}

/* A callback that ended without a report leaves its records to the next one's start. */
static void test_newer_callback_drops_unreported_records(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback old = callback_of(PID_A, PID_A, 1);
	struct event_callback now = callback_of(PID_A, PID_A, 2);
	struct record_set set;

	for (int i = 0; i < 3; i++)
		records_add(b, record(PID_A, PID_A, 1, 2));
	records_add(b, record(PID_A, PID_A, 2, 2));
	assert_int_equal(stats_of(b).unreported, 3);
	assert_int_equal(stats_of(b).dropped, 0);
	set = records_take(b, &old);
	assert_int_equal(set.n, 0);
	assert_null(set.recs);
	set = records_take(b, &now);
	assert_int_equal(set.n, 1);
	record_set_free(&set);
}

static void test_threads_kept_apart(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback other = callback_of(PID_A, PID_A + 100, 1);
	struct record_set set;

	records_add(b, record(PID_A, PID_A, 1, 1));
	records_add(b, record(PID_A, PID_A + 100, 1, 1));
	records_add(b, record(PID_A, PID_A + 100, 1, 1));
	set = records_take(b, &other);
	assert_int_equal(set.n, 2);
	assert_int_equal(stats_of(b).records, 1);
	record_set_free(&set);
}

static void test_forget_thread(void **state)
{
	struct record_buffer *b = *state;

	records_add(b, record(PID_A, PID_A, 1, 1));
	records_add(b, record(PID_A, PID_A + 1, 1, 1));
	records_add(b, record(PID_A, PID_A + 1, 1, 1));
	assert_int_equal(stats_of(b).threads, 2);
	records_forget_thread(b, PID_A, PID_A + 1);
	assert_int_equal(stats_of(b).threads, 1);
	assert_int_equal(stats_of(b).records, 1);
	assert_int_equal(stats_of(b).unreported, 2);
	records_forget_thread(b, PID_A, PID_A + 1);	/* twice, or never seen: nothing */
	records_forget_thread(b, PID_B, PID_B);
	assert_int_equal(stats_of(b).threads, 1);
}

static void test_fd_names_per_process_and_forget_process(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback cb_a = callback_of(PID_A, PID_A, 1);
	struct event_callback cb_b = callback_of(PID_B, PID_B, 1);
	struct record_set set;

	records_add(b, opened(PID_A, 3, "/srv/a.db"));
	records_add(b, opened(PID_B, 3, "/srv/b.log"));
	records_add(b, read_fd(PID_A, 3));
	records_add(b, read_fd(PID_B, 3));
	records_add(b, read_fd(PID_B, 4));		/* never opened, gone from /proc */
	assert_int_equal(stats_of(b).processes, 2);
	assert_int_equal(stats_of(b).fd_names, 2);
	set = records_take(b, &cb_a);
	assert_int_equal(set.n, 2);
	assert_null(set.recs[0].fd_path);		/* an open has no fd argument */
	assert_string_equal(set.recs[1].fd_path, "/srv/a.db");
	record_set_free(&set);
	set = records_take(b, &cb_b);
	assert_int_equal(set.n, 3);
	assert_string_equal(set.recs[1].fd_path, "/srv/b.log");
	assert_null(set.recs[2].fd_path);
	record_set_free(&set);

	records_add(b, record(PID_A, PID_A, 2, 1));
	records_forget_process(b, PID_A);
	assert_int_equal(stats_of(b).processes, 1);
	assert_int_equal(stats_of(b).threads, 1);
	assert_int_equal(stats_of(b).fd_names, 1);
	assert_int_equal(stats_of(b).unreported, 1);
	records_forget_process(b, PID_B);
	assert_int_equal(stats_of(b).processes, 0);
	assert_int_equal(stats_of(b).fd_names, 0);
}

/* A path that filled its BPF buffer is kept as it came, and an fd names at most that much. */
static void test_long_paths_bounded(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback cb = callback_of(PID_A, PID_A, 1);
	struct record_set set;
	char path[AIOCOPD_STR_LEN + 1];

	memset(path, 'x', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = 0;
	records_add(b, opened(PID_A, 9, path));
	memset(ev.str, 'y', sizeof(ev.str));		/* even unterminated */
	ev.ret = 10;
	records_add(b, &ev);
	records_add(b, read_fd(PID_A, 9));
	records_add(b, read_fd(PID_A, 10));
	set = records_take(b, &cb);
	assert_int_equal(set.n, 4);
	assert_int_equal(strlen(set.recs[2].fd_path), AIOCOPD_STR_LEN - 1);
	assert_int_equal(strlen(set.recs[3].fd_path), AIOCOPD_STR_LEN - 1);
	record_set_free(&set);
}

/*
 * Records over the cap, and the repeats BPF folded into them, are not itemised: the set says
 * how many operations and how much time that was, with what BPF itself did not record.
 */
static void test_records_over_the_cap_are_counted(void **state)
{
	struct record_buffer *b = *state;
	struct event_callback cb = callback_of(PID_A, PID_A, 3);
	struct record_set set;

	for (unsigned i = 0; i < AIOCOPD_MAX_PENDING + 10; i++) {
		record(PID_A, PID_A, 3, 1);
		ev.duration_ns = 1000;
		records_add(b, &ev);
	}
	/* a repeat of the last record (not kept) folded into the next one, which is a sample */
	record(PID_A, PID_A, 3, 1);
	ev.source = SOURCE_SAMPLE;
	ev.folded = 5;
	ev.folded_ns = 500;
	records_add(b, &ev);
	cb.omitted = 100;		/* BPF's own: over its cap */
	cb.omitted_ns = 20000;
	set = records_take(b, &cb);
	assert_int_equal(set.n, AIOCOPD_MAX_PENDING);
	assert_int_equal(set.omitted, 100 + 10 + 5);	/* the sample is no operation */
	assert_int_equal(set.omitted_ns, 20000 + 10 * 1000 + 500);
	/* the kept records did not get the folded time of one that was not kept */
	for (size_t i = 0; i < set.n; i++)
		assert_int_equal(set.recs[i].ev->duration_ns, 1000);
	record_set_free(&set);
	/* the next callback starts from nothing */
	cb = callback_of(PID_A, PID_A, 4);
	records_add(b, record(PID_A, PID_A, 4, 1));
	set = records_take(b, &cb);
	assert_int_equal(set.n, 1);
	assert_int_equal(set.omitted, 0);
	assert_int_equal(set.omitted_ns, 0);
	record_set_free(&set);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_room_grows_to_the_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_in_arrival_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_callback_drops_unreported_records, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_threads_kept_apart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fd_names_per_process_and_forget_process, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_long_paths_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_records_over_the_cap_are_counted, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
