/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What target inspection learns from a runtime file alone (version, layout row, symbol and
 * USDT file offsets), kept in a small LRU keyed by the file's identity and build id, so
 * that every later process running the same interpreter skips the ELF and debug-file work.
 * What depends on the process (load bias, _PyRuntime's address, _Py_DebugOffsets read from
 * memory, context_run found through PyContext_Type in memory) is never kept here.
 */
#ifndef AIOCOPD_RUNTIME_CACHE_H
#define AIOCOPD_RUNTIME_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "elf_file.h"
#include "pylayout.h"

#define RUNTIME_CACHE_SLOTS	16	/* interpreters one host runs; more only evict */
#define RUNTIME_USDT_SITES	4	/* CPython has one site per gc probe */

struct runtime_key {
	struct elf_file_id file;
	size_t build_id_len;		/* 0: the file has none */
	unsigned char build_id[ELF_BUILD_ID_MAX];
};

struct runtime_file {
	bool python;			/* has _PyRuntime; false: nothing below is set */
	int major, minor, micro;
	char version[32];
	const struct py_version_layout *layout;	/* the built-in row for major.minor */
	uint64_t load_vaddr, load_offset;	/* first PT_LOAD as mapped: for the bias */
	uint64_t runtime_vaddr;		/* _PyRuntime, or its .PyRuntime section */
	uint64_t context_run_offset;	/* 0: look in the process (PyContext_Type) */
	const char *context_run_source;
	uint64_t audit_offset;		/* PySys_Audit */
	uint64_t audit_tstate_offset;	/* _PySys_Audit, 0: none */
	uint64_t audit_core_offset;	/* sys_audit_tstate's first push, 0: none */
	uint64_t context_enter_offset;	/* PyContext_Enter, 0: none */
	uint64_t gc_offset;		/* gc_collect_main, 0: unknown */
	uint64_t finalize_offset;	/* Py_FinalizeEx, 0: none */
	struct elf_usdt_site gc_start[RUNTIME_USDT_SITES], gc_done[RUNTIME_USDT_SITES];
	unsigned n_gc_start, n_gc_done;	/* USDT gc__start / gc__done sites */
};

struct runtime_cache_slot {
	bool used;
	uint64_t last_use;
	struct runtime_key key;
	struct runtime_file info;
};

struct runtime_cache {
	struct runtime_cache_slot slots[RUNTIME_CACHE_SLOTS];
	uint64_t clock;			/* ticks at every lookup and store: LRU order */
	uint64_t hits, misses;
};

/* The facts kept for key, now the most recently used, or NULL. */
const struct runtime_file *runtime_cache_find(struct runtime_cache *c,
					      const struct runtime_key *key);
/* Keeps a copy of info under key, replacing the same key or the least recently used. */
void runtime_cache_store(struct runtime_cache *c, const struct runtime_key *key,
			 const struct runtime_file *info);
void runtime_cache_clear(struct runtime_cache *c);

#endif
