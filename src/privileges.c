// SPDX-License-Identifier: GPL-2.0
/*
 * The privileges aiocopd needs (see include/privileges.h). The table below is the one
 * place that says which capability each operation takes and why; the README's and the
 * man page's privilege tables are what it gives on kernel 6.18, measured.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privileges.h"

/* Capabilities newer than some uapi headers (Linux 5.8, 5.9). */
#ifndef CAP_PERFMON
#define CAP_PERFMON	38
#endif
#ifndef CAP_BPF
#define CAP_BPF		39
#endif
#ifndef CAP_CHECKPOINT_RESTORE
#define CAP_CHECKPOINT_RESTORE	40
#endif

#define NO_CAP		(-1)
#define UPROBE_PMU_TYPE	"/sys/bus/event_source/devices/uprobe/type"

static const struct {
	int cap;
	int or_cap;		/* another capability that grants it too, or NO_CAP */
	const char *name;
	const char *purpose;
} needs[PRIV_COUNT] = {
	/* CAP_SYS_ADMIN still grants what CAP_BPF and CAP_PERFMON split off from it (5.8) */
	[PRIV_BPF] = { CAP_BPF, CAP_SYS_ADMIN, "CAP_BPF", "to load the BPF programs" },
	[PRIV_PERFMON] = { CAP_PERFMON, CAP_SYS_ADMIN, "CAP_PERFMON",
			   "to attach the BPF programs to tracepoints and uprobes" },
	[PRIV_PTRACE] = { CAP_SYS_PTRACE, NO_CAP, "CAP_SYS_PTRACE",
			  "to read the target's /proc files and memory" },
	[PRIV_TRACEFS_READ] = { CAP_DAC_READ_SEARCH, CAP_DAC_OVERRIDE, "CAP_DAC_READ_SEARCH",
				"to look tracepoints up in tracefs, whose directory "
				"/sys/kernel/tracing only root may enter (mode 0700)" },
	[PRIV_TRACEFS_MOUNT] = { CAP_SYS_ADMIN, NO_CAP, "CAP_SYS_ADMIN",
				 "to mount tracefs, which is not mounted (or mount it first: "
				 "mount -t tracefs nodev /sys/kernel/tracing)" },
	[PRIV_PERF_UPROBES] = { CAP_SYS_ADMIN, NO_CAP, "CAP_SYS_ADMIN",
				"to attach uprobes through perf events, as aiocopd does where the "
				"kernel has no uprobe_multi links (before Linux 6.6) or "
				"AIOCOPD_NO_UPROBE_MULTI=1 is set" },
	[PRIV_MAP_FILES] = { CAP_CHECKPOINT_RESTORE, CAP_SYS_ADMIN, "CAP_CHECKPOINT_RESTORE",
			     "to open the file through /proc/PID/map_files/, the kernel's own "
			     "link to what the target mapped" },
};

/* Our effective set; false when the kernel will not say (then it decides at each call). */
static bool effective_caps(uint64_t *caps)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return false;
	*caps = (uint64_t)data[1].effective << 32 | data[0].effective;
	return true;
}

static bool has(uint64_t caps, int cap)
{
	return cap != NO_CAP && (caps >> cap & 1);
}

bool privileges_have(enum privilege p)
{
	uint64_t caps;

	if (!effective_caps(&caps))
		return true;
	return has(caps, needs[p].cap) || has(caps, needs[p].or_cap);
}

/* Appends "CAP_X (needed to ...)" to msg at *used, after a comma or the line's start. */
static void append(enum privilege p, char *msg, size_t msgsz, size_t *used)
{
	int n;

	if (*used >= msgsz)
		return;
	n = snprintf(msg + *used, msgsz - *used, "%s%s (needed %s)",
		     *used ? ", " : "missing privileges: ",
		     needs[p].name, needs[p].purpose);
	*used += n > 0 ? (size_t)n : 0;
}

bool privileges_check_start(char *msg, size_t msgsz)
{
	static const enum privilege at_start[] = { PRIV_BPF, PRIV_PERFMON, PRIV_PTRACE };
	size_t used = 0;

	msg[0] = 0;
	for (size_t i = 0; i < sizeof(at_start) / sizeof(at_start[0]); i++)
		if (!privileges_have(at_start[i]))
			append(at_start[i], msg, msgsz, &used);
	return used == 0;
}

int privileges_fail(enum privilege p, char *msg, size_t msgsz)
{
	size_t used = 0;

	msg[0] = 0;
	append(p, msg, msgsz, &used);
	return -EPERM;
}

bool privileges_denied(int err)
{
	return err == EPERM || err == EACCES || err == -EPERM || err == -EACCES;
}

/*
 * The uprobe PMU checks its capability before it looks at the event: with no file named it
 * answers EINVAL when we may, EACCES when we may not, and nothing is registered either way.
 * Which capability that is changed over the years (CAP_SYS_ADMIN, CAP_PERFMON from 5.8, then
 * CAP_SYS_ADMIN again): asking the kernel is the only sure answer.
 */
bool privileges_perf_uprobes_allowed(void)
{
	struct perf_event_attr attr = { .size = sizeof(attr) };
	FILE *f = fopen(UPROBE_PMU_TYPE, "re");
	int type, fd;

	if (!f)
		return true;	/* no uprobe PMU: the attach will say what is wrong */
	if (fscanf(f, "%d", &type) != 1) {
		fclose(f);
		return true;
	}
	fclose(f);
	attr.type = (uint32_t)type;
	fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd >= 0) {
		close(fd);	/* cannot happen without a file; nothing to refuse */
		return true;
	}
	return !privileges_denied(errno);
}
