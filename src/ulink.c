// SPDX-License-Identifier: GPL-2.0
/*
 * Per-target uprobe links (see include/ulink.h). A link closes in one of a few releaser
 * threads: the kernel unregisters its uprobes and waits out an RCU grace period (uprobe_multi)
 * or several (perf events) in whichever thread drops the last reference, and the waits of
 * threads closing at once overlap. Released links stay on a list until they are closed, so a
 * program is not attached to a pid again while its last link there is still attached.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>

#include "proc_facts.h"
#include "ulink.h"

/*
 * uprobe_multi came with Linux 6.6; Debian 12's uapi headers and libbpf 1.1 predate it, so
 * its attach type, flag and the link_create attributes it uses are written out here as the
 * kernel's include/uapi/linux/bpf.h has them (union bpf_attr, member link_create).
 */
#define ULINK_TRACE_UPROBE_MULTI	48	/* enum bpf_attach_type: BPF_TRACE_UPROBE_MULTI */
#define ULINK_UPROBE_MULTI_RETURN	1u	/* BPF_F_UPROBE_MULTI_RETURN */

struct uprobe_multi_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;			/* link_create.flags: none */
	__aligned_u64 path;		/* link_create.uprobe_multi */
	__aligned_u64 offsets;
	__aligned_u64 ref_ctr_offsets;
	__aligned_u64 cookies;
	__u32 cnt;
	__u32 multi_flags;
	__u32 pid;
	/*
	 * Named so the initializer zeroes it: the kernel refuses (EINVAL) an attr whose bytes
	 * past the last field it knows are not zero, and padding is not zeroed by C, which
	 * left a clang ASan build attaching nothing here.
	 */
	__u32 zero_tail;
};

_Static_assert(offsetof(struct uprobe_multi_attr, path) == 16,
	       "link_create's per-type union starts at byte 16");
_Static_assert(offsetof(struct uprobe_multi_attr, pid) == 56,
	       "uprobe_multi.pid follows cnt and flags");
_Static_assert(sizeof(struct uprobe_multi_attr) == 64 &&
	       offsetof(struct uprobe_multi_attr, zero_tail) == 60,
	       "no padding: every byte passed to bpf(2) is initialized");

struct ulink {
	struct ulink *next;		/* on the pending list once released */
	const struct bpf_program *prog;
	pid_t pid;
	bool closing;			/* a releaser thread has it */
	int fd;				/* uprobe_multi link, or -1 */
	size_t n_perf;
	struct bpf_link *perf[ULINK_MAX_SITES];	/* perf-event uprobes, one per site */
};

static int uprobe_multi_create(int prog_fd, const char *path, const uint64_t *offsets,
			       const uint64_t *ref_ctr_offsets, size_t n, uint32_t flags,
			       pid_t pid)
{
	struct uprobe_multi_attr attr = {
		.prog_fd = prog_fd,
		.attach_type = ULINK_TRACE_UPROBE_MULTI,
		.path = (uintptr_t)path,
		.offsets = (uintptr_t)offsets,
		.ref_ctr_offsets = (uintptr_t)ref_ctr_offsets,
		.cnt = n,
		.multi_flags = flags,
		.pid = pid,
	};

	return syscall(SYS_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
}

/*
 * A kernel that knows uprobe_multi links loads a program for them and refuses a directory
 * as their file with EBADF; an older one fails the load or says EINVAL. Nothing is attached.
 */
static bool kernel_has_uprobe_multi(void)
{
	static const struct bpf_insn return_zero[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts,
		    .expected_attach_type = (enum bpf_attach_type)ULINK_TRACE_UPROBE_MULTI);
	uint64_t offset = 0;
	int prog, link, err;

	prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, NULL, "GPL", return_zero,
			     sizeof(return_zero) / sizeof(return_zero[0]), &opts);
	if (prog < 0)
		return false;
	link = uprobe_multi_create(prog, "/", &offset, NULL, 1, 0, 0);
	err = errno;
	if (link >= 0)
		close(link);
	close(prog);
	return link < 0 && err == EBADF;
}

int ulinks_init(struct ulinks *u)
{
	const char *off = getenv("AIOCOPD_NO_UPROBE_MULTI");

	memset(u, 0, sizeof(*u));
	if (pthread_mutex_init(&u->lock, NULL))
		return -ENOMEM;
	pthread_cond_init(&u->work, NULL);
	pthread_cond_init(&u->done, NULL);
	u->ready = true;
	u->multi = !(off && off[0] == '1') && kernel_has_uprobe_multi();
	return 0;
}

void ulinks_prepare(const struct ulinks *u, struct bpf_program *prog)
{
	if (u->multi)
		bpf_program__set_expected_attach_type(prog,
			(enum bpf_attach_type)ULINK_TRACE_UPROBE_MULTI);
}

static int attach_multi(struct ulink *l, struct bpf_program *prog, const char *path,
			const struct elf_usdt_site *sites, size_t n, bool retprobe)
{
	uint64_t offsets[ULINK_MAX_SITES], refs[ULINK_MAX_SITES];
	bool any_ref = false;

	for (size_t i = 0; i < n; i++) {
		offsets[i] = sites[i].offset;
		refs[i] = sites[i].ref_ctr_offset;
		any_ref |= refs[i] != 0;
	}
	l->fd = uprobe_multi_create(bpf_program__fd(prog), path, offsets, any_ref ? refs : NULL,
				    n, retprobe ? ULINK_UPROBE_MULTI_RETURN : 0, l->pid);
	if (l->fd >= 0)
		return 0;
	/* the path goes through /proc/PID/root: gone with the process, say so as perf does */
	if (errno == ENOENT && !proc_alive(l->pid))
		return -ESRCH;
	return -errno;
}

/* The slow part: the kernel unregisters the uprobes and waits for RCU. */
static void detach(struct ulink *l)
{
	if (l->fd >= 0)
		close(l->fd);
	for (size_t i = 0; i < l->n_perf; i++)
		bpf_link__destroy(l->perf[i]);
	l->fd = -1;
	l->n_perf = 0;
}

static void close_now(struct ulink *l)
{
	detach(l);
	free(l);
}

/* One perf-event uprobe per site, the way libbpf 1.1 makes them. */
static int attach_perf(struct ulink *l, struct bpf_program *prog, const char *path,
		       const struct elf_usdt_site *sites, size_t n, bool retprobe)
{
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe,
			    .ref_ctr_offset = sites[i].ref_ctr_offset);

		l->perf[i] = bpf_program__attach_uprobe_opts(prog, l->pid, path,
							     sites[i].offset, &opts);
		if (!l->perf[i])
			return -errno;
		l->n_perf++;
	}
	return 0;
}

static bool still_attached(const struct ulinks *u, const struct bpf_program *prog, pid_t pid)
{
	for (const struct ulink *l = u->pending; l; l = l->next)
		if (l->prog == prog && l->pid == pid)
			return true;
	return false;
}

/*
 * A link released but not closed yet still fires, and for a pid that has exec'd it fires in
 * the new image too: attaching the same program again before it is gone would run it twice
 * per hit. Only a re-exec or a re-arm soon after a release waits here.
 */
static void wait_released(struct ulinks *u, const struct bpf_program *prog, pid_t pid)
{
	pthread_mutex_lock(&u->lock);
	while (still_attached(u, prog, pid))
		pthread_cond_wait(&u->done, &u->lock);
	pthread_mutex_unlock(&u->lock);
}

struct ulink *ulink_attach(struct ulinks *u, struct bpf_program *prog, pid_t pid,
			   const char *path, const struct elf_usdt_site *sites, size_t n,
			   bool retprobe)
{
	struct ulink *l;
	int ret;

	if (!n || n > ULINK_MAX_SITES) {
		errno = EINVAL;
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	wait_released(u, prog, pid);
	l->prog = prog;
	l->pid = pid;
	l->fd = -1;
	if (u->multi)
		ret = attach_multi(l, prog, path, sites, n, retprobe);
	else
		ret = attach_perf(l, prog, path, sites, n, retprobe);
	if (ret) {
		close_now(l);	/* a half-made link: the caller has nothing to release */
		errno = -ret;
		return NULL;
	}
	return l;
}

static struct ulink *first_open(struct ulinks *u)
{
	for (struct ulink *l = u->pending; l; l = l->next)
		if (!l->closing)
			return l;
	return NULL;
}

static void unlink_pending(struct ulinks *u, struct ulink *gone)
{
	for (struct ulink **pp = &u->pending; *pp; pp = &(*pp)->next)
		if (*pp == gone) {
			*pp = gone->next;
			return;
		}
}

static void *releaser(void *arg)
{
	struct ulinks *u = arg;
	struct ulink *l;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		l = first_open(u);
		if (!l) {
			if (u->stopping)
				break;
			pthread_cond_wait(&u->work, &u->lock);
			continue;
		}
		l->closing = true;
		pthread_mutex_unlock(&u->lock);
		detach(l);		/* still pending meanwhile: attaches wait for it */
		pthread_mutex_lock(&u->lock);
		unlink_pending(u, l);
		free(l);
		pthread_cond_broadcast(&u->done);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/*
 * With every signal blocked: signals stay the main thread's, which polls for them. Closing
 * perf-event uprobes takes the kernel's event_mutex across its grace periods, so those
 * closes run one at a time whatever we do, and each one queued there delays the next
 * attach: a single thread for them.
 */
static void start_releasers(struct ulinks *u)
{
	size_t want = u->multi ? ULINK_RELEASERS : 1;
	sigset_t all, old;
	pthread_attr_t attr;

	if (u->n_threads || pthread_attr_init(&attr))
		return;
	pthread_attr_setstacksize(&attr, 64 * 1024);	/* they only call close() */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (u->n_threads < want &&
	       pthread_create(&u->threads[u->n_threads], &attr, releaser, u) == 0)
		u->n_threads++;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
}

void ulink_release(struct ulinks *u, struct ulink *l)
{
	struct ulink **tail;

	if (!l)
		return;
	pthread_mutex_lock(&u->lock);
	start_releasers(u);
	if (!u->n_threads || u->stopping) {
		pthread_mutex_unlock(&u->lock);
		close_now(l);		/* no thread to hand it to: close it here */
		return;
	}
	for (tail = &u->pending; *tail; tail = &(*tail)->next)
		;
	l->next = NULL;
	*tail = l;
	pthread_cond_signal(&u->work);
	pthread_mutex_unlock(&u->lock);
}

void ulinks_drain(struct ulinks *u, unsigned timeout_ms)
{
	struct timespec deadline;

	if (!u->ready)
		return;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&u->lock);
	while (u->pending && pthread_cond_timedwait(&u->done, &u->lock, &deadline) == 0)
		;
	pthread_mutex_unlock(&u->lock);
}

/*
 * The links no thread has taken yet are closed here, at once: probes_close has handed every
 * file to a child that outlives us, so closing ours no longer waits for the kernel. Those
 * the threads are closing take at most one grace period more.
 */
void ulinks_close(struct ulinks *u)
{
	struct ulink *l;

	if (!u->ready)
		return;
	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	while ((l = first_open(u))) {
		unlink_pending(u, l);
		close_now(l);
	}
	pthread_cond_broadcast(&u->work);
	pthread_mutex_unlock(&u->lock);
	for (size_t i = 0; i < u->n_threads; i++)
		pthread_join(u->threads[i], NULL);
	pthread_cond_destroy(&u->work);
	pthread_cond_destroy(&u->done);
	pthread_mutex_destroy(&u->lock);
	u->ready = false;
}
