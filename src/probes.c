// SPDX-License-Identifier: GPL-2.0
/*
 * BPF object lifetime and attachment. Syscall tracepoints are attached one by one from the
 * syscall table, so a kernel that lacks an optional one still works; the loop's own
 * (epoll) and the scheduler's are required.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "aiocopd.skel.h"
#include "classify.h"
#include "privileges.h"
#include "probes.h"
#include "syscall_table.h"


static int fail(char *err, size_t errsz, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return ret < 0 ? ret : -EINVAL;
}

static int add_link(struct probes *p, struct bpf_link *link)
{
	if (!link)
		return -errno;
	if (p->n_links >= PROBES_MAX_LINKS) {
		bpf_link__destroy(link);
		return -ENOSPC;
	}
	p->links[p->n_links++] = link;
	return 0;
}

/* Classic tracepoints need tracefs; a fresh machine may not have it mounted. */
static int ensure_tracefs(char *err, size_t errsz)
{
	struct stat st;

	if (stat("/sys/kernel/tracing/events", &st) == 0)
		return 0;
	if (errno == EACCES)	/* mounted, in a directory we may not enter */
		return privileges_fail(PRIV_TRACEFS_READ, err, errsz);
	if (stat("/sys/kernel/debug/tracing/events", &st) == 0)
		return 0;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) && errno != EBUSY)
		return privileges_denied(errno) ? privileges_fail(PRIV_TRACEFS_MOUNT, err, errsz) :
		       fail(err, errsz, -errno, "cannot mount tracefs on /sys/kernel/tracing: %s",
			    strerror(errno));
	return 0;
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN && getenv("AIOCOPD_DEBUG_BPF"))
		return vfprintf(stderr, fmt, ap);
	if (level == LIBBPF_DEBUG && getenv("AIOCOPD_DEBUG_BPF"))
		return vfprintf(stderr, fmt, ap);
	return 0;
}

/* Attaches enter and exit to one syscall's tracepoints, both or neither. */
static int attach_syscall(struct probes *p, const struct syscall_info *s,
			  struct bpf_program *enter_prog, struct bpf_program *exit_prog)
{
	struct bpf_link *enter, *exit;
	char name[64];
	int ret;

	snprintf(name, sizeof(name), "sys_enter_%s", syscall_event(s));
	enter = bpf_program__attach_tracepoint(enter_prog, "syscalls", name);
	if (!enter)
		return -errno;
	snprintf(name, sizeof(name), "sys_exit_%s", syscall_event(s));
	exit = bpf_program__attach_tracepoint(exit_prog, "syscalls", name);
	if (!exit) {
		ret = -errno;
		bpf_link__destroy(enter);
		return ret;
	}
	ret = add_link(p, enter);
	if (ret) {
		bpf_link__destroy(exit);
		return ret;
	}
	return add_link(p, exit);
}

/*
 * The syscall table's tracepoints. Without the loop's own waits nothing works; a kernel
 * without one of the others still does, without that syscall.
 */
static int attach_syscalls(struct probes *p, char *err, size_t errsz)
{
	struct aiocopd_bpf *skel = p->skel;

	for (size_t i = 0; i < syscall_table_len; i++) {
		const struct syscall_info *s = &syscall_table[i];
		int ret;

		if (s->kind == SYSCALL_LOOP_WAIT) {
			ret = attach_syscall(p, s, skel->progs.epoll_enter, skel->progs.epoll_exit);
			if (ret)
				return fail(err, errsz, ret, "cannot attach the %s tracepoints: %s",
					    s->name, strerror(-ret));
		} else if (attach_syscall(p, s, skel->progs.syscall_enter,
					  skel->progs.syscall_exit)) {
			p->tracepoints_missing++;
		}
	}
	return 0;
}

/* Classic tracepoint programs attach to the syscall table's tracepoints, the rest by section. */
static int attach_system_programs(struct probes *p, char *err, size_t errsz)
{
	struct bpf_program *prog;
	int ret;

	ret = attach_syscalls(p, err, errsz);
	if (ret)
		return ret;
	bpf_object__for_each_program(prog, p->skel->obj) {
		if (bpf_program__type(prog) != BPF_PROG_TYPE_TRACING)
			continue;
		ret = add_link(p, bpf_program__attach(prog));
		if (ret)
			return fail(err, errsz, ret, "cannot attach %s: %s",
				    bpf_program__section_name(prog), strerror(-ret));
	}
	return 0;
}

/* What BPF needs to know about each traced syscall, from the same table. */
static int fill_syscall_props(struct probes *p, char *err, size_t errsz)
{
	int fd = bpf_map__fd(p->skel->maps.syscall_props);

	for (size_t i = 0; i < syscall_table_len; i++) {
		const struct syscall_info *s = &syscall_table[i];
		__u32 key = s->nr;

		if (s->nr >= AIOCOPD_SYSCALL_SLOTS)
			return fail(err, errsz, -ERANGE, "syscall %s (%u) is past the BPF table",
				    s->name, s->nr);
		if (bpf_map_update_elem(fd, &key, &s->props, BPF_ANY))
			return fail(err, errsz, -errno, "cannot describe syscall %s to BPF: %s",
				    s->name, strerror(errno));
	}
	return 0;
}

#define PROC_PID_INIT_INO	0xEFFFFFFCu	/* the initial PID namespace's inode */

/*
 * Our own PID namespace, whose numbers every map and record uses (bpf/ids.bpf.h); nothing
 * to set on the host, where they are the kernel's own.
 */
static void set_pid_namespace(struct aiocopd_bpf *skel)
{
	struct stat ns;

	if (stat("/proc/self/ns/pid", &ns) == 0 && ns.st_ino != PROC_PID_INIT_INO)
		skel->rodata->owner_pidns_inum = ns.st_ino;
}

/* The limits BPF applies, in its read-only data: the verifier sees them as constants. */
static void set_limits(struct aiocopd_bpf *skel)
{
	skel->rodata->slow_syscall_ns = AIOCOPD_SLOW_SYSCALL_NS;
	skel->rodata->slow_wait_ns = AIOCOPD_SLOW_WAIT_NS;
	skel->rodata->max_records_per_callback = AIOCOPD_MAX_RECORDS_PER_CALLBACK;
	skel->rodata->max_samples_per_scope = AIOCOPD_MAX_SAMPLES_PER_SCOPE;
	/* only processes this one can continue are ever held (bpf/hold.bpf.c) */
	skel->rodata->owner_tgid = getpid();
	set_pid_namespace(skel);
}

static void fill_audit_names(struct probes *p)
{
	int fd = bpf_map__fd(p->skel->maps.audit_names);

	for (const struct audit_rule *r = audit_rules; r->name; r++) {
		char key[AIOCOPD_AUDIT_KEY_LEN] = {};
		__u32 one = 1;

		strncpy(key, r->name, sizeof(key) - 1);
		bpf_map_update_elem(fd, key, &one, BPF_ANY);
	}
}

/*
 * Every kprobe-type program of the object is a uprobe attached per target through ulink:
 * uprobe_multi programs when the kernel has those links.
 */
static int prepare_uprobes(struct probes *p)
{
	struct bpf_program *prog;
	int ret;

	ret = ulinks_init(&p->ulinks);
	if (ret)
		return ret;
	bpf_object__for_each_program(prog, p->skel->obj)
		if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE)
			ulinks_prepare(&p->ulinks, prog);
	return 0;
}

int probes_open(struct probes *p, probes_event_fn fn, void *ctx, char *err, size_t errsz)
{
	int ret;

	memset(p, 0, sizeof(*p));
	libbpf_set_print(libbpf_quiet);
	ret = ensure_tracefs(err, errsz);
	if (ret)
		return ret;
	p->skel = aiocopd_bpf__open();
	if (!p->skel)
		return fail(err, errsz, -errno, "cannot open the BPF object: %s", strerror(errno));
	set_limits(p->skel);
	ret = prepare_uprobes(p);
	if (ret)
		return fail(err, errsz, ret, "cannot start: %s", strerror(-ret));
	if (!p->ulinks.multi && !privileges_perf_uprobes_allowed())
		return privileges_fail(PRIV_PERF_UPROBES, err, errsz);
	ret = aiocopd_bpf__load(p->skel);
	if (ret)
		return fail(err, errsz, ret, "cannot load the BPF programs: %s "
			    "(set AIOCOPD_DEBUG_BPF=1 for the verifier log)", strerror(-ret));
	fill_audit_names(p);
	ret = fill_syscall_props(p, err, errsz);
	if (ret)
		return ret;
	ret = attach_system_programs(p, err, errsz);
	if (ret)
		return ret;
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events), fn, ctx, NULL);
	if (!p->rb)
		return fail(err, errsz, -errno, "cannot open the ring buffer: %s", strerror(errno));
	return 0;
}

/*
 * Sites in the target's runtime, attached through a descriptor of the very file it maps:
 * the kernel resolves the path it is given, and a name the target chose could lead elsewhere.
 */
static struct ulink *attach_sites(struct probes *p, struct bpf_program *prog,
				  const struct py_target *t, const struct elf_usdt_site *sites,
				  size_t n, bool retprobe)
{
	char path[32];
	struct ulink *l;
	int fd = target_runtime_fd(t), saved;

	if (fd < 0) {
		errno = -fd;
		return NULL;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	l = ulink_attach(&p->ulinks, prog, t->pid, path, sites, n, retprobe);
	saved = errno;
	close(fd);
	errno = saved;
	return l;
}

/* One program on one function entry (or its returns) of the target's runtime. */
static struct ulink *attach_at(struct probes *p, struct bpf_program *prog,
			       const struct py_target *t, uint64_t offset, bool retprobe)
{
	struct elf_usdt_site site = { .offset = offset };

	return attach_sites(p, prog, t, &site, 1, retprobe);
}

static void detach_gc(struct probes *p, struct target_links *l)
{
	ulink_release(&p->ulinks, l->gc[0]);
	ulink_release(&p->ulinks, l->gc[1]);
	l->gc[0] = l->gc[1] = NULL;
	l->gc_source = NULL;
}

/*
 * Collections are rare next to callbacks: timing them costs little, so always on. The USDT
 * probes are plain uprobes on their sites (with their semaphores): the programs read no
 * USDT argument.
 */
static void attach_gc(struct probes *p, const struct py_target *t, struct target_links *l)
{
	struct aiocopd_bpf *s = p->skel;

	if (t->gc_offset) {
		l->gc[0] = attach_at(p, s->progs.gc_collect_entry, t, t->gc_offset, false);
		l->gc[1] = l->gc[0] ? attach_at(p, s->progs.gc_collect_return, t, t->gc_offset,
						true) : NULL;
		l->gc_source = "gc_collect_main";
	} else if (t->gc_usdt) {
		l->gc[0] = attach_sites(p, s->progs.gc_start_usdt, t, t->gc_start, t->n_gc_start,
					false);
		l->gc[1] = l->gc[0] ? attach_sites(p, s->progs.gc_done_usdt, t, t->gc_done,
						   t->n_gc_done, false) : NULL;
		l->gc_source = "USDT gc__start/gc__done";
	}
	if (!l->gc[0] || !l->gc[1])
		detach_gc(p, l);
}

/*
 * A process that exits right after its slow callback would otherwise take the memory its
 * report's frames are named from with it. Processes that end without finalizing (os._exit,
 * a signal) are not held: their reports may lose their frames.
 */
void probes_attach_always(struct probes *p, const struct py_target *t, struct target_links *l,
			  bool hold_at_exit)
{
	attach_gc(p, t, l);
	if (hold_at_exit && t->finalize_offset)
		l->finalize = attach_at(p, p->skel->progs.process_finalize, t, t->finalize_offset,
					false);
}

int probes_add_target(struct probes *p, const struct py_target *t, const struct target_cfg *cfg,
		      struct target_links *l, char *err, size_t errsz)
{
	__u32 pid = t->pid;

	memset(l, 0, sizeof(*l));
	if (bpf_map_update_elem(bpf_map__fd(p->skel->maps.targets), &pid, cfg, BPF_ANY))
		return fail(err, errsz, -errno, "cannot register PID %d: %s", t->pid,
			    strerror(errno));
	return 0;
}

static int set_armed(struct probes *p, pid_t pid, bool armed)
{
	int fd = bpf_map__fd(p->skel->maps.targets);
	struct target_cfg cfg;
	__u32 key = pid;

	if (bpf_map_lookup_elem(fd, &key, &cfg))
		return -errno;
	if (armed)
		cfg.flags |= TARGET_ARMED;
	else
		cfg.flags &= ~TARGET_ARMED;
	return bpf_map_update_elem(fd, &key, &cfg, BPF_EXIST) ? -errno : 0;
}

static void detach_uprobes(struct probes *p, struct target_links *l)
{
	for (size_t i = 0; i < UPROBE_SLOTS; i++) {
		ulink_release(&p->ulinks, l->uprobes[i]);
		l->uprobes[i] = NULL;
	}
}

int probes_arm(struct probes *p, const struct py_target *t, struct target_links *l,
	       char *err, size_t errsz)
{
	/*
	 * The audit entry points go first: a callback bounded by context_run must not miss the
	 * Python-level events raised while the rest attaches. context_run, last, marks armed.
	 * Where the build names sys_audit_tstate, one probe there sees what both would.
	 */
	bool core = t->audit_core_offset;
	const struct {
		struct bpf_program *prog;
		uint64_t offset;
		const char *name;
		bool required;
	} probes[UPROBE_SLOTS] = {
		[UPROBE_AUDIT] = { core ? p->skel->progs.audit_core_entry : p->skel->progs.audit_entry,
				   core ? t->audit_core_offset : t->audit_offset,
				   core ? "sys_audit_tstate" : "PySys_Audit", true },
		[UPROBE_AUDIT_TSTATE] = { p->skel->progs.audit_tstate_entry,
					  core ? 0 : t->audit_tstate_offset, "_PySys_Audit", true },
		/* optional: without it uvloop's callbacks are reported by iteration */
		[UPROBE_CONTEXT_ENTER] = { p->skel->progs.context_enter_entry,
					   t->context_enter_offset, "PyContext_Enter", false },
		[UPROBE_CONTEXT_RUN] = { p->skel->progs.context_run_entry, t->context_run_offset,
					 "context_run", true },
	};

	if (l->uprobes[UPROBE_CONTEXT_RUN])
		return 0;	/* armed already */
	for (size_t i = 0; i < UPROBE_SLOTS; i++) {
		int ret;

		if (!probes[i].offset)
			continue;	/* this build has no such entry point */
		l->uprobes[i] = attach_at(p, probes[i].prog, t, probes[i].offset, false);
		if (l->uprobes[i] || !probes[i].required)
			continue;
		ret = -errno;
		probes_disarm(p, t, l);
		if (privileges_denied(ret))
			return privileges_fail(p->ulinks.multi ? PRIV_PERFMON : PRIV_PERF_UPROBES,
					       err, errsz);
		return fail(err, errsz, ret, "cannot attach a uprobe to %s in %s: %s",
			    probes[i].name, t->runtime_path, strerror(-ret));
	}
	return set_armed(p, t->pid, true);
}

void probes_disarm(struct probes *p, const struct py_target *t, struct target_links *l)
{
	set_armed(p, t->pid, false);
	detach_uprobes(p, l);
}

void probes_remove_target(struct probes *p, pid_t pid, struct target_links *l)
{
	__u32 key = pid;

	detach_uprobes(p, l);
	detach_gc(p, l);
	ulink_release(&p->ulinks, l->finalize);
	l->finalize = NULL;
	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.targets), &key);
}

void probes_add_loop_thread(struct probes *p, pid_t pid, pid_t tid, bool stats)
{
	struct thread_state st = { .pid = pid, .flags = THREAD_LOOP };
	struct callback_ident id = {};
	__u32 key = tid;

	/* BPF may have added it first (it saw epoll_wait return): keep its state */
	bpf_map_update_elem(bpf_map__fd(p->skel->maps.threads), &key, &st, BPF_NOEXIST);
	bpf_map_update_elem(bpf_map__fd(p->skel->maps.idents), &key, &id, BPF_NOEXIST);
	if (stats) {
		struct loop_stats fresh = { .pid = pid };

		bpf_map_update_elem(bpf_map__fd(p->skel->maps.loop_stats), &key, &fresh,
				    BPF_NOEXIST);
	}
}

void probes_forget_thread(struct probes *p, pid_t tid)
{
	__u32 key = tid;

	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.threads), &key);
	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.idents), &key);
	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.tops), &key);
	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.stack_bottoms), &key);
	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.loop_stats), &key);
}

/* No family member is stopped from now on (exec is ending): the map they are found in goes. */
void probes_stop_following(struct probes *p)
{
	int fd = bpf_map__fd(p->skel->maps.family);
	__u32 key, next;

	while (bpf_map_get_next_key(fd, NULL, &next) == 0) {
		key = next;
		if (bpf_map_delete_elem(fd, &key))
			break;
	}
}

void probes_discover_execs(struct probes *p, bool on)
{
	p->skel->bss->discover_execs = on;
}

int probes_follow(struct probes *p, pid_t pid, __u32 flags)
{
	__u32 key = pid;

	return bpf_map_update_elem(bpf_map__fd(p->skel->maps.family), &key, &flags, BPF_ANY) ?
	       -errno : 0;
}

/*
 * The process BPF held for us goes on. SIGCONT first: if we die between the two, BPF's sweep
 * only continues it once more.
 */
void probes_continue(struct probes *p, pid_t pid)
{
	__u32 key = pid;

	kill(pid, SIGCONT);
	bpf_map_delete_elem(bpf_map__fd(p->skel->maps.held), &key);
}

struct ulink *probes_stop_at_entry(struct probes *p, pid_t pid, const char *path,
				   uint64_t offset)
{
	struct elf_usdt_site site = { .offset = offset };

	return ulink_attach(&p->ulinks, p->skel->progs.process_entry, pid, path, &site, 1,
			    false);
}

void probes_release_stop(struct probes *p, struct ulink *stop)
{
	ulink_release(&p->ulinks, stop);
}

int probes_ring_fd(const struct probes *p)
{
	return ring_buffer__epoll_fd(p->rb);
}

int probes_consume(struct probes *p)
{
	return ring_buffer__consume(p->rb);
}

uint64_t probes_lost(const struct probes *p, unsigned why)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu > 0 ? ncpu : 1];
	__u32 key = why;
	uint64_t sum = 0;

	if (ncpu <= 0 || bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.lost), &key, vals))
		return 0;
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

/* Every program starts with a lookup in one of these maps: emptied, they all do nothing. */
static void quiesce(struct probes *p)
{
	struct bpf_map *maps[] = { p->skel->maps.family, p->skel->maps.targets,
				   p->skel->maps.threads };
	__u32 key, next;

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		int fd = bpf_map__fd(maps[i]);

		while (bpf_map_get_next_key(fd, NULL, &next) == 0) {
			key = next;
			if (bpf_map_delete_elem(fd, &key))
				break;
		}
	}
}

/*
 * Removing a syscall tracepoint's link waits for RCU grace periods, one link at a time under
 * a kernel mutex: some 40 ms each, seconds for all of them (per-syscall tracepoints stay all
 * the same: see docs/PERFORMANCE.md). Once the maps are empty the programs do nothing, so a
 * child keeps the last references to the links and drops them after aiocopd has exited, and
 * aiocopd returns at once. (Handing them to the kernel instead, through an io_uring ring's
 * teardown, left one kernel worker to remove every run's links: runs in quick succession
 * outpaced it, until a tracepoint had 64 programs and refused more.)
 */
static void hand_off_detach(void)
{
	int hold[2], devnull;
	pid_t child;
	char c;

	if (pipe2(hold, O_CLOEXEC))
		return;
	child = fork();
	if (child < 0) {
		close(hold[0]);
		close(hold[1]);
		return;
	}
	if (child > 0) {
		close(hold[0]);
		return;		/* hold[1] closes when we exit: that releases the child */
	}
	close(hold[1]);
	setsid();
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	for (int fd = 0; fd <= 2 && devnull >= 0; fd++)
		dup2(devnull, fd);	/* never hold a caller's pipe open */
	while (read(hold[0], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);		/* the kernel detaches everything as our files close */
}

/*
 * Live targets trap into their uprobes until these close, even with nothing left to do:
 * give the releasers that long to take them off before the rest is handed off.
 */
#define UPROBE_DRAIN_MS		200

void probes_close(struct probes *p)
{
	if (p->skel)
		quiesce(p);
	ulinks_drain(&p->ulinks, UPROBE_DRAIN_MS);
	if (p->n_links)
		hand_off_detach();
	ulinks_close(&p->ulinks);
	for (size_t i = 0; i < p->n_links; i++)
		bpf_link__destroy(p->links[i]);
	p->n_links = 0;
	ring_buffer__free(p->rb);
	p->rb = NULL;
	aiocopd_bpf__destroy(p->skel);
	p->skel = NULL;
}

/* ---- what the engine changes while running ---------------------------------------------- */

/*
 * About ten samples per threshold, so a callback just over it still gets a few stacks; at
 * most one per timer expiry, so in practice one per scheduler tick (4 ms at HZ=250).
 */
void probes_set_sample_period(struct probes *p, double threshold_ms)
{
	uint64_t ns = (uint64_t)(threshold_ms * 1e6 / 10);

	if (ns < 1000000)
		ns = 1000000;
	if (ns > 10000000)
		ns = 10000000;
	p->skel->data->sample_period_ns = ns;
}

int probes_update_target(struct probes *p, pid_t pid, const struct target_cfg *cfg)
{
	__u32 key = pid;

	return bpf_map_update_elem(bpf_map__fd(p->skel->maps.targets), &key, cfg, BPF_EXIST) ?
	       -errno : 0;
}

int probes_read_loop_stats(struct probes *p, pid_t tid, struct loop_stats *out)
{
	__u32 key = tid;

	return bpf_map_lookup_elem(bpf_map__fd(p->skel->maps.loop_stats), &key, out) ? -errno : 0;
}

int probes_take_loop_stats(struct probes *p, pid_t tid, struct loop_stats *out)
{
	int fd = bpf_map__fd(p->skel->maps.loop_stats);
	__u32 key = tid;

	if (bpf_map_lookup_elem(fd, &key, out))
		return -errno;
	bpf_map_delete_elem(fd, &key);
	return 0;
}
