/* SPDX-License-Identifier: GPL-2.0 */
/* Bounded reads of another process's memory (process_vm_readv) and of its /proc entries. */
#ifndef AIOCOPD_PROCMEM_H
#define AIOCOPD_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCMEM_MAX_READ	(1u << 20)	/* largest single read we ever ask for */

int procmem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
int procmem_read_u64(pid_t pid, uint64_t addr, uint64_t *val);
/* Reads a NUL-terminated string of at most bufsz - 1 bytes; always terminates buf. */
int procmem_read_cstr(pid_t pid, uint64_t addr, char *buf, size_t bufsz);
/* Reads a whole small /proc file into buf (NUL-terminated); returns its length or -errno. */
ssize_t proc_read_file(const char *path, char *buf, size_t bufsz);

#endif
