// SPDX-License-Identifier: GPL-2.0
/*
 * What the rules see of a process (see proc_facts.h). A process in a chroot shows the host's
 * path of its executable, one in its own mount namespace its own path: the path it sees is
 * the first with the process's root taken off.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proc_facts.h"
#include "procmem.h"

#define CGROUP_READ_MAX		4096

static bool has_suffix(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len > n && !memcmp(s + len - n, suffix, n);
}

void proc_facts_unit_of(const char *cgroup_path, char *unit, size_t unitsz)
{
	const char *p = cgroup_path;

	unit[0] = 0;
	while (p && *p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		/* the innermost one: a service of a container's own systemd, not the container's */
		if ((has_suffix(p, len, ".service") || has_suffix(p, len, ".scope")) &&
		    len < unitsz) {
			memcpy(unit, p, len);
			unit[len] = 0;
		}
		p = end ? end + 1 : NULL;
	}
}

/* Whether pid's mount namespace is ours (a chroot in it shows host paths). */
static bool same_mount_ns(pid_t pid)
{
	struct stat ours, theirs;
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
	return stat("/proc/self/ns/mnt", &ours) == 0 && stat(path, &theirs) == 0 &&
	       ours.st_ino == theirs.st_ino && ours.st_dev == theirs.st_dev;
}

static void read_exe(struct proc_facts *f)
{
	char path[64], root[PATH_MAX];
	ssize_t n, root_len;

	snprintf(path, sizeof(path), "/proc/%d/exe", f->pid);
	n = readlink(path, f->exe, sizeof(f->exe) - 1);
	f->exe[n > 0 ? n : 0] = 0;
	if (n <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/root", f->pid);
	root_len = readlink(path, root, sizeof(root) - 1);
	if (root_len <= 1 || root_len >= n || memcmp(f->exe, root, root_len) ||
	    f->exe[root_len] != '/' || !same_mount_ns(f->pid))
		return;
	memmove(f->exe, f->exe + root_len, n - root_len + 1);
}

bool proc_facts_cmdline(pid_t pid, char *buf, size_t bufsz)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	n = proc_read_file(path, buf, bufsz);
	if (n < 0)
		n = 0;
	/* arguments joined by spaces; a trailing NUL is the last argument's end */
	while (n > 0 && buf[n - 1] == 0)
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == 0)
			buf[i] = ' ';
	buf[n] = 0;
	return (size_t)n >= bufsz - 1;
}

static void read_unit(struct proc_facts *f)
{
	char path[64], *buf = malloc(CGROUP_READ_MAX), *line, *save = NULL;

	f->unit[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", f->pid);
	if (!buf || proc_read_file(path, buf, CGROUP_READ_MAX) <= 0)
		goto out;
	/* cgroup v2: "0::/system.slice/orders-api.service" */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "0::", 3))
			proc_facts_unit_of(line + 3, f->unit, sizeof(f->unit));
out:
	free(buf);
}

static void read_uid(struct proc_facts *f)
{
	char path[64], buf[2048];
	const char *uid;
	unsigned long v;

	f->has_uid = false;
	snprintf(path, sizeof(path), "/proc/%d/status", f->pid);
	if (proc_read_file(path, buf, sizeof(buf)) <= 0)
		return;
	uid = strstr(buf, "\nUid:");
	if (uid && sscanf(uid + 5, "%lu", &v) == 1) {
		f->uid = v;
		f->has_uid = true;
	}
}

void proc_facts_init(struct proc_facts *f, pid_t pid)
{
	f->pid = pid;
	f->have = 0;
	f->exe[0] = f->cmdline[0] = f->unit[0] = 0;
	f->has_uid = f->cmdline_cut = false;
}

/* Reads fact once; false when it had been read already. */
static bool first_time(struct proc_facts *f, unsigned fact)
{
	if (f->have & fact)
		return false;
	f->have |= fact;
	return true;
}

const char *proc_facts_exe(struct proc_facts *f)
{
	if (first_time(f, FACT_EXE))
		read_exe(f);
	return f->exe;
}

const char *proc_facts_cmdline_of(struct proc_facts *f)
{
	if (first_time(f, FACT_CMDLINE))
		f->cmdline_cut = proc_facts_cmdline(f->pid, f->cmdline, sizeof(f->cmdline));
	return f->cmdline;
}

const char *proc_facts_unit(struct proc_facts *f)
{
	if (first_time(f, FACT_UNIT))
		read_unit(f);
	return f->unit;
}

bool proc_facts_uid(struct proc_facts *f, uid_t *uid)
{
	if (first_time(f, FACT_UID))
		read_uid(f);
	*uid = f->uid;
	return f->has_uid;
}

bool proc_alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

bool proc_facts_alive(const struct proc_facts *f)
{
	return proc_alive(f->pid);
}

static bool is_pid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int proc_for_each_pid(void (*fn)(void *ctx, pid_t pid), void *ctx)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	unsigned seen = 0;

	if (!dir)
		return -errno;
	while ((de = readdir(dir)) && seen++ < PROC_SCAN_MAX) {
		long pid;

		if (!is_pid_name(de->d_name))
			continue;
		pid = strtol(de->d_name, NULL, 10);
		if (pid > 0 && pid <= INT32_MAX)
			fn(ctx, pid);
	}
	closedir(dir);
	return 0;
}
