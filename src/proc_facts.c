// SPDX-License-Identifier: GPL-2.0
/*
 * What the rules see of a process (see proc_facts.h). A process in a chroot shows the host's
 * path of its executable, one in its own mount namespace its own path: the path it sees is
 * the first with the process's root taken off.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc_facts.h"
#include "procmem.h"
#include "target_ns.h"

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

static void read_exe(pid_t pid, struct proc_facts *f)
{
	struct target_place place;
	char path[64];
	ssize_t n;
	size_t root_len;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, f->exe, sizeof(f->exe) - 1);
	f->exe[n > 0 ? n : 0] = 0;
	if (n <= 0)
		return;
	target_place_read(pid, &place);
	root_len = strlen(place.root);
	if (place.own_root && !place.own_mnt_ns && root_len > 1 &&
	    !strncmp(f->exe, place.root, root_len) && f->exe[root_len] == '/')
		memmove(f->exe, f->exe + root_len, strlen(f->exe + root_len) + 1);
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

static void read_unit(pid_t pid, struct proc_facts *f)
{
	char path[64], *buf = malloc(CGROUP_READ_MAX), *line, *save = NULL;

	f->unit[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	if (!buf || proc_read_file(path, buf, CGROUP_READ_MAX) <= 0)
		goto out;
	/* cgroup v2: "0::/system.slice/orders-api.service" */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (!strncmp(line, "0::", 3))
			proc_facts_unit_of(line + 3, f->unit, sizeof(f->unit));
out:
	free(buf);
}

static void read_uid(pid_t pid, struct proc_facts *f)
{
	char path[64], buf[2048];
	const char *uid;
	unsigned long v;

	f->has_uid = false;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (proc_read_file(path, buf, sizeof(buf)) <= 0)
		return;
	uid = strstr(buf, "\nUid:");
	if (uid && sscanf(uid + 5, "%lu", &v) == 1) {
		f->uid = v;
		f->has_uid = true;
	}
}

int proc_facts_read(pid_t pid, struct proc_facts *f)
{
	f->pid = pid;
	read_exe(pid, f);
	f->cmdline_cut = proc_facts_cmdline(pid, f->cmdline, sizeof(f->cmdline));
	read_unit(pid, f);
	read_uid(pid, f);
	if (kill(pid, 0) && errno == ESRCH)
		return -ESRCH;
	return 0;
}
