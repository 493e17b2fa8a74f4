// SPDX-License-Identifier: GPL-2.0
/*
 * A target's root and namespaces (target_ns.h), from /proc: NSpid in status for the ids it
 * sees, the ns/ links for which namespaces, root for which root. Everything read here comes
 * from the target's side of /proc and is bounded: a malformed line is "not known", never
 * a guess.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procmem.h"
#include "target_ns.h"

#define STATUS_MAX	4096	/* /proc/PID/status is about 1.5 KiB */
#define NSPID_LEVELS	32	/* the kernel's MAX_PID_NS_LEVEL */

int target_nspid_parse(const char *status, pid_t *outer, pid_t *inner)
{
	const char *line = strstr(status, "\nNSpid:");
	int n = 0;

	if (strncmp(status, "NSpid:", 6) == 0)
		line = status;
	else if (line)
		line++;
	if (!line)
		return -ENOENT;
	line += 6;
	while (n < NSPID_LEVELS) {
		char *end;
		long v;

		line += strspn(line, " \t");
		if (*line == '\n' || !*line)
			break;
		v = strtol(line, &end, 10);
		if (end == line || v <= 0 || v > INT32_MAX || (*end && !strchr(" \t\n", *end)))
			return -ENOENT;
		if (n++ == 0)
			*outer = v;
		*inner = v;
		line = end;
	}
	return n ? 0 : -ENOENT;
}

/* The innermost id of a status file, 0 when it is the outermost too or unknown. */
static pid_t ns_id_of(const char *status_path)
{
	char buf[STATUS_MAX];
	pid_t outer, inner;

	if (proc_read_file(status_path, buf, sizeof(buf)) <= 0 ||
	    target_nspid_parse(buf, &outer, &inner) || inner == outer)
		return 0;
	return inner;
}

pid_t target_ns_tid(pid_t pid, pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, tid);
	return ns_id_of(path);
}

/* Whether pid's namespace of this kind is another than ours; its inode number in *ino. */
static bool other_ns(pid_t pid, const char *kind, uint64_t *ino)
{
	char theirs[64], ours[64];
	struct stat a, b;

	snprintf(theirs, sizeof(theirs), "/proc/%d/ns/%s", pid, kind);
	snprintf(ours, sizeof(ours), "/proc/self/ns/%s", kind);
	if (stat(theirs, &a) || stat(ours, &b))
		return false;
	*ino = a.st_ino;
	return a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

static bool other_root(pid_t pid)
{
	char theirs[64];
	struct stat a, b;

	snprintf(theirs, sizeof(theirs), "/proc/%d/root", pid);
	if (stat(theirs, &a) || stat("/", &b))
		return false;
	return a.st_dev != b.st_dev || a.st_ino != b.st_ino;
}

void target_place_read(pid_t pid, struct target_place *p)
{
	char path[64];
	ssize_t n;

	memset(p, 0, sizeof(*p));
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	p->ns_pid = ns_id_of(path);
	p->own_pid_ns = other_ns(pid, "pid", &p->pid_ns);
	p->own_mnt_ns = other_ns(pid, "mnt", &p->mnt_ns);
	snprintf(path, sizeof(path), "/proc/%d/root", pid);
	n = readlink(path, p->root, sizeof(p->root) - 1);
	p->root[n > 0 ? n : 0] = 0;
	if (n <= 0)
		snprintf(p->root, sizeof(p->root), "?");
	/* a directory our / is bound onto is the same directory under another name */
	p->own_root = other_root(pid) || (n > 0 && strcmp(p->root, "/"));
}

void target_place_describe(pid_t pid, const struct target_place *p, char *buf, size_t bufsz)
{
	char pid_part[96] = "", root_part[PATH_MAX + 96];

	if (p->own_mnt_ns)
		snprintf(root_part, sizeof(root_part), "root %s of its own mount namespace "
			 "mnt:[%llu]%s", p->root, (unsigned long long)p->mnt_ns,
			 p->own_root ? " (another directory than ours)" : "");
	else
		snprintf(root_part, sizeof(root_part), "root %s%s", p->root,
			 p->own_root ? " (chroot)" : "");
	if (p->own_pid_ns)
		snprintf(pid_part, sizeof(pid_part), "its own PID namespace pid:[%llu], where it is "
			 "PID %d", (unsigned long long)p->pid_ns, p->ns_pid ? p->ns_pid : pid);
	else
		snprintf(pid_part, sizeof(pid_part), "our PID namespace");
	snprintf(buf, bufsz, "%s, %s", root_part, pid_part);
}
