/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where a target lives: its root and its PID and mount namespaces, next to ours. A process
 * in a container or a chroot sees other ids (NSpid) and other paths than the host: BPF and
 * aiocopd see host ids, reports add the ones the target sees, and file names read in
 * /proc/PID/maps are relative to our root or to the target's (see target.c).
 */
#ifndef AIOCOPD_TARGET_NS_H
#define AIOCOPD_TARGET_NS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct target_place {
	pid_t ns_pid;			/* the pid the target sees itself under; 0: our own */
	bool own_pid_ns;		/* another PID namespace than ours */
	bool own_mnt_ns;		/* another mount namespace than ours */
	bool own_root;			/* its root is another directory than ours */
	uint64_t pid_ns, mnt_ns;	/* namespace inode numbers, as in "pid:[N]" */
	char root[PATH_MAX];		/* readlink of /proc/PID/root (in its namespace if own) */
};

/* Fills p for pid; what cannot be read is left as "the same as ours". */
void target_place_read(pid_t pid, struct target_place *p);

/*
 * The id the thread tid of pid sees itself under (NSpid's last field), or 0 when it is the
 * host's or cannot be read (the thread is gone).
 */
pid_t target_ns_tid(pid_t pid, pid_t tid);

/*
 * Of a /proc status text (NUL-terminated): the first and the last id of its NSpid line.
 * Returns 0, or -ENOENT when there is no well-formed NSpid line.
 */
int target_nspid_parse(const char *status, pid_t *outer, pid_t *inner);

/* One sentence for -v: the root and namespaces used, e.g. "root /srv/c (chroot), ...". */
void target_place_describe(pid_t pid, const struct target_place *p, char *buf, size_t bufsz);

#endif
