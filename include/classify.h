/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What a blocking record means: its category and aiocop-compatible weight, a readable name,
 * how records of one callback merge into operations, and the severity of a callback.
 * Pure functions of their inputs, so the model is unit-tested without BPF.
 */
#ifndef AIOCOPD_CLASSIFY_H
#define AIOCOPD_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum category {
	CAT_SLEEP,
	CAT_FILE,
	CAT_NETWORK,
	CAT_DNS,
	CAT_SUBPROCESS,
	CAT_DATABASE,
	CAT_LOCK,
	CAT_OTHER,
};

enum severity_level { LEVEL_LOW, LEVEL_MEDIUM, LEVEL_HIGH };

#define SEVERITY_MAX_EVENTS	50	/* events counted towards one callback's score */
#define OP_NAME_LEN		256

/* One blocking record as user space sees it, before merging. */
struct raw_op {
	bool audit;			/* Python-level audit event, else a syscall */
	bool sample;			/* a CPU sample: shows where, is no operation */
	unsigned nr;			/* syscall number */
	uint64_t args[6];
	int64_t ret;
	uint32_t fd_mode;
	const char *name;		/* audit event name */
	const char *arg_text[3];	/* audit arguments rendered, may be NULL */
	const char *path;		/* syscall path argument, may be NULL */
	const uint8_t *sockaddr;	/* connect/sendto destination, may be NULL */
	size_t sockaddr_len;
	const char *fd_path;		/* what the fd argument names, may be NULL */
	int fd;				/* the fd acted on or (poll of one fd) waited for, or -1 */
	const uint8_t *peer;		/* that socket's peer as a sockaddr, may be NULL */
	size_t peer_len;
	bool database_stack;		/* the Python stack runs a database driver */
	bool subprocess_stack;		/* the Python stack runs the subprocess module */
	uint64_t start_ns;		/* CLOCK_MONOTONIC */
	uint64_t duration_ns;
	uint64_t site_code, site_instr;	/* innermost Python frame: the call site */
};

struct op_class {
	enum category category;
	int weight;
	bool primary;			/* starts an operation; else continues one at its site */
	char name[OP_NAME_LEN];
	char detail[96];		/* the syscall's destination address, when it has one */
	bool wants_detail;		/* an audit event whose name takes that address */
	bool needs_syscall;		/* an audit event that blocks only in a syscall */
	const char *syscall;		/* syscall name, NULL for audit events */
};

/* A merged operation: what a report lists as one blocking event. */
struct op {
	enum category category;
	int weight;
	char name[OP_NAME_LEN];
	const char *syscall;		/* first syscall that took part, or NULL */
	uint64_t start_ns;		/* its first record, CLOCK_MONOTONIC */
	uint64_t duration_ns;
	uint64_t site_code, site_instr;
	bool from_audit;
	bool wants_detail;		/* its name waits for the address a syscall will give */
	bool needs_syscall;		/* a blocking event only once a syscall merged into it */
	size_t first_raw;		/* index of the record whose stack the op shows */
};

const char *category_name(enum category c);
const char *severity_level_name(enum severity_level l);
const char *syscall_name(unsigned nr);

/* When an audit event is a blocking operation (SPEC 4: only what could block counts). */
enum audit_condition {
	COUNTS_ALWAYS = 0,
	COUNTS_UNLESS_NUMERIC_HOST,	/* a lookup of an address literal queries nothing */
	COUNTS_WITH_SYSCALL,		/* blocks only in a syscall BPF recorded at its site */
};

/* Audit event names that count, with their category and weight; NULL-terminated by name. */
struct audit_rule {
	const char *name;
	enum category category;
	int weight;
	int shown_args;			/* arguments shown in the name; -1: the syscall's address */
	enum audit_condition condition;
};
extern const struct audit_rule audit_rules[];

/* false when the record is not a blocking operation at all (an audit event we ignore). */
bool classify_raw(const struct raw_op *r, struct op_class *out);

/*
 * Adds a record to the operations of one callback: merged into the last operation when it
 * is the same call (same Python call site, and the last one came from an audit event or the
 * record only continues it), else appended. Returns the new count; never exceeds max.
 */
size_t ops_add(struct op *ops, size_t n, size_t max, const struct raw_op *r, size_t raw_index);

/*
 * Drops the operations that could not have blocked: audit events that block only in a
 * syscall when no syscall record joined them (asyncio's non-blocking connect). Keeps the
 * order; returns the new count.
 */
size_t ops_drop_unblocked(struct op *ops, size_t n);

/* An operation's weight: aiocop's, or 50 when it alone took at least the threshold. */
int op_weight(const struct op *op, uint64_t threshold_ns);

/* The sum of the first SEVERITY_MAX_EVENTS operations' op_weight. */
int severity_score(const struct op *ops, size_t n, uint64_t threshold_ns);
enum severity_level severity_level(int score);

/*
 * A callback's level: its score's, raised by the stall rule (held the loop at least 2x the
 * threshold: at least medium; 4x: at least high), whatever its reason.
 */
enum severity_level callback_level(int score, double elapsed_ms, double threshold_ms);

bool path_ends_with(const char *path, const char *suffix);

/* True for a frame file of a database driver (psycopg2, redis, sqlite3, ...). */
bool is_database_driver_path(const char *path);

/* True for a frame file in CPython's standard library (not site-/dist-packages). */
bool is_stdlib_path(const char *path);

#endif
