/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Inspection of a target process: is it alive, is it CPython, which version, where is the
 * runtime mapped, and where are the functions the probes attach to.
 */
#ifndef AIOCOPD_TARGET_H
#define AIOCOPD_TARGET_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pylayout.h"
#include "runtime_cache.h"
#include "target_ns.h"

/* Errors, returned negated, that the CLI turns into distinct messages. */
enum target_error {
	TARGET_OK = 0,
	TARGET_NO_PROCESS,		/* no such pid */
	TARGET_NOT_PYTHON,		/* no CPython runtime mapped */
	TARGET_UNSUPPORTED,		/* a CPython we have no layout for */
	TARGET_NO_ACCESS,		/* /proc or memory not readable */
	TARGET_NO_SYMBOL,		/* a probe address could not be resolved */
};

/* One mapping of a file: where, and which file (device and inode as /proc/PID/maps says). */
struct target_mapping {
	uint64_t start, end;
	unsigned dev_major, dev_minor;
	uint64_t ino;
};

struct py_target {
	pid_t pid;
	char comm[32];
	struct target_place place;	/* its root and namespaces */
	char runtime_path[PATH_MAX];	/* as /proc/PID/maps shows it: for people, never opened */
	struct target_mapping runtime_map;	/* its first mapping */
	const char *runtime_via;	/* how the runtime file was opened, for -v */
	struct elf_file_id runtime_id;	/* the file the offsets below were read from */
	uint64_t bias;			/* load bias of the runtime */
	int major, minor, micro;
	char version[32];		/* "3.11.2" */
	const struct py_version_layout *layout;	/* points at layout_copy */
	struct py_version_layout layout_copy;
	const char *layout_source;	/* "built-in table", "_Py_DebugOffsets", ... */
	uint64_t runtime_addr;		/* _PyRuntime in the target */
	uint64_t context_run_offset;	/* file offsets for uprobes */
	uint64_t audit_offset;
	uint64_t audit_tstate_offset;	/* _PySys_Audit, 0 when the build has none */
	uint64_t audit_core_offset;	/* where both meet (sys_audit_tstate), 0: unknown */
	uint64_t gc_offset;		/* gc_collect_main, 0 when unknown */
	uint64_t finalize_offset;	/* Py_FinalizeEx, 0 when the build has none */
	uint64_t context_enter_offset;	/* PyContext_Enter: uvloop's callback boundary */
	bool gc_usdt;			/* else: the build has gc__start/gc__done USDT probes */
	struct elf_usdt_site gc_start[RUNTIME_USDT_SITES], gc_done[RUNTIME_USDT_SITES];
	unsigned n_gc_start, n_gc_done;	/* their sites, for uprobe_multi links */
	const char *context_run_source;	/* which lookup found context_run */
};

struct target_options {
	const char *debug_root;		/* separate debug files; default /usr/lib/debug */
};

/* Fills t; on failure returns a negative enum target_error and writes a message to err. */
int target_inspect(pid_t pid, const struct target_options *opts, struct py_target *t,
		   char *err, size_t errsz);

/*
 * An O_PATH descriptor of t's runtime file as t->pid maps it now, or -errno (-ESRCH: gone,
 * -ESTALE: another file than the one inspected). Open or attach to it as /proc/self/fd/N:
 * the kernel then takes this very file and never looks a name up that the target controls.
 */
int target_runtime_fd(const struct py_target *t);

/*
 * A file name as /proc/PID/maps shows it (a newline as "\012") and back; out is always
 * terminated, cut short rather than overrun. Several names show the same: open none unchecked.
 */
void target_maps_name_escape(const char *name, char *out, size_t outsz);
void target_maps_name_unescape(const char *shown, char *out, size_t outsz);

/* Whether the process maps a file whose path contains needle (e.g. "/uvloop/loop."). */
bool target_maps_file(pid_t pid, const char *needle);

#endif
