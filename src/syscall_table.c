// SPDX-License-Identifier: GPL-2.0
/*
 * The syscalls that can block an event loop, which aiocopd traces. Numbers come from the
 * kernel headers; this table is the only list of them: the loader attaches their
 * tracepoints and hands their argument properties to BPF, reports take their names from
 * it, and the classifier their kind.
 */
#include <asm/unistd.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "syscall_table.h"

const struct syscall_info syscall_table[] = {
	/* fd I/O: the file behind the fd decides whether it can block */
	{ .nr = __NR_read, .name = "read", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_write, .name = "write", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_pread64, .name = "pread64", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_pwrite64, .name = "pwrite64", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_readv, .name = "readv", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_writev, .name = "writev", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_preadv, .name = "preadv", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_pwritev, .name = "pwritev", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_fsync, .name = "fsync", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_fdatasync, .name = "fdatasync", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_ftruncate, .name = "ftruncate", .kind = SYSCALL_FD_IO, .props.fd_arg = 1 },
	{ .nr = __NR_copy_file_range, .name = "copy_file_range", .kind = SYSCALL_FD_IO,
	  .props.fd_arg = 1 },
	/* the input file decides */
	{ .nr = __NR_sendfile, .name = "sendfile", .kind = SYSCALL_FD_IO, .event = "sendfile64",
	  .props.fd_arg = 2 },
	/* MSG_DONTWAIT makes a socket call non-blocking */
	{ .nr = __NR_recvfrom, .name = "recvfrom", .kind = SYSCALL_FD_IO,
	  .props = { .fd_arg = 1, .skip_arg = 4, .skip_mask = MSG_DONTWAIT } },
	{ .nr = __NR_sendmsg, .name = "sendmsg", .kind = SYSCALL_FD_IO,
	  .props = { .fd_arg = 1, .skip_arg = 3, .skip_mask = MSG_DONTWAIT } },
	{ .nr = __NR_recvmsg, .name = "recvmsg", .kind = SYSCALL_FD_IO,
	  .props = { .fd_arg = 1, .skip_arg = 3, .skip_mask = MSG_DONTWAIT } },
	{ .nr = __NR_sendto, .name = "sendto", .kind = SYSCALL_SENDTO,
	  .props = { .fd_arg = 1, .operand_arg = 5, .skip_arg = 4, .skip_mask = MSG_DONTWAIT } },
	{ .nr = __NR_connect, .name = "connect", .kind = SYSCALL_CONNECT,
	  .props = { .fd_arg = 1, .operand_arg = 2 } },
	{ .nr = __NR_accept, .name = "accept", .kind = SYSCALL_ACCEPT, .props.fd_arg = 1 },
	{ .nr = __NR_accept4, .name = "accept4", .kind = SYSCALL_ACCEPT, .props.fd_arg = 1 },
	{ .nr = __NR_getdents64, .name = "getdents64", .kind = SYSCALL_LISTDIR, .props.fd_arg = 1 },
	{ .nr = __NR_flock, .name = "flock", .kind = SYSCALL_LOCK, .props.fd_arg = 1 },
	/*
	 * Thread locks: CPython's locks sleep in futex (wakes never wait). Every thread of
	 * every process calls it, so it counts only when it waited long (SC_FD_WAIT).
	 */
	{ .nr = __NR_futex, .name = "futex", .kind = SYSCALL_FUTEX, .props.flags = SC_FD_WAIT },

	/* waits and sleeps; the requested timespec is copied */
	/* poll with an int timeout of 0 only checks; a poll of one fd (CPython's socket
	 * timeouts) is named by that fd */
	{ .nr = __NR_poll, .name = "poll", .kind = SYSCALL_POLL,
	  .props = { .flags = SC_FD_WAIT | SC_SKIP_ZERO | SC_POLL_ONE_FD, .skip_arg = 3,
		     .skip_mask = UINT32_MAX } },
	{ .nr = __NR_ppoll, .name = "ppoll", .kind = SYSCALL_POLL,
	  .props.flags = SC_FD_WAIT | SC_POLL_ONE_FD },
	/*
	 * The timeout names a sleep: 3.10's time.sleep is select() with no fds (pselect6 in
	 * glibc). The kernel counts it down in place, so BPF copies it at the call's entry.
	 */
	{ .nr = __NR_select, .name = "select", .kind = SYSCALL_SELECT,
	  .props = { .flags = SC_FD_WAIT | SC_OPERAND_AT_ENTRY | SC_OPERAND_TIMEVAL,
		     .operand_arg = 5 } },
	{ .nr = __NR_pselect6, .name = "pselect6", .kind = SYSCALL_SELECT,
	  .props = { .flags = SC_FD_WAIT | SC_OPERAND_AT_ENTRY, .operand_arg = 5 } },
	{ .nr = __NR_nanosleep, .name = "nanosleep", .kind = SYSCALL_SLEEP,
	  .props.operand_arg = 1 },
	{ .nr = __NR_clock_nanosleep, .name = "clock_nanosleep", .kind = SYSCALL_CLOCK_SLEEP,
	  .props.operand_arg = 3 },

	/* paths */
	{ .nr = __NR_open, .name = "open", .kind = SYSCALL_OPEN, .props.path_arg = 1 },
	{ .nr = __NR_creat, .name = "creat", .kind = SYSCALL_OPEN, .props.path_arg = 1 },
	{ .nr = __NR_openat, .name = "openat", .kind = SYSCALL_OPEN, .props.path_arg = 2 },
	{ .nr = __NR_openat2, .name = "openat2", .kind = SYSCALL_OPEN, .props.path_arg = 2 },
	{ .nr = __NR_stat, .name = "stat", .kind = SYSCALL_STAT, .event = "newstat",
	  .props.path_arg = 1 },
	{ .nr = __NR_lstat, .name = "lstat", .kind = SYSCALL_STAT, .event = "newlstat",
	  .props.path_arg = 1 },
	/* with AT_EMPTY_PATH they are fstat(): cheap */
	{ .nr = __NR_newfstatat, .name = "newfstatat", .kind = SYSCALL_STAT,
	  .props = { .path_arg = 2, .skip_arg = 4, .skip_mask = AT_EMPTY_PATH } },
	{ .nr = __NR_statx, .name = "statx", .kind = SYSCALL_STAT,
	  .props = { .path_arg = 2, .skip_arg = 3, .skip_mask = AT_EMPTY_PATH } },
	{ .nr = __NR_statfs, .name = "statfs", .kind = SYSCALL_STAT, .props.path_arg = 1 },
	{ .nr = __NR_access, .name = "access", .kind = SYSCALL_STAT, .props.path_arg = 1 },
	{ .nr = __NR_faccessat, .name = "faccessat", .kind = SYSCALL_STAT, .props.path_arg = 2 },
	{ .nr = __NR_faccessat2, .name = "faccessat2", .kind = SYSCALL_STAT, .props.path_arg = 2 },
	{ .nr = __NR_readlink, .name = "readlink", .kind = SYSCALL_STAT, .props.path_arg = 1 },
	{ .nr = __NR_readlinkat, .name = "readlinkat", .kind = SYSCALL_STAT, .props.path_arg = 2 },
	{ .nr = __NR_truncate, .name = "truncate", .kind = SYSCALL_PATH_CHANGE,
	  .props.path_arg = 1 },
	{ .nr = __NR_mkdir, .name = "mkdir", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 1 },
	{ .nr = __NR_mkdirat, .name = "mkdirat", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 2 },
	{ .nr = __NR_rmdir, .name = "rmdir", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 1 },
	{ .nr = __NR_unlink, .name = "unlink", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 1 },
	{ .nr = __NR_unlinkat, .name = "unlinkat", .kind = SYSCALL_PATH_CHANGE,
	  .props.path_arg = 2 },
	{ .nr = __NR_rename, .name = "rename", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 1 },
	{ .nr = __NR_renameat, .name = "renameat", .kind = SYSCALL_PATH_CHANGE,
	  .props.path_arg = 2 },
	{ .nr = __NR_renameat2, .name = "renameat2", .kind = SYSCALL_PATH_CHANGE,
	  .props.path_arg = 2 },
	{ .nr = __NR_link, .name = "link", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 1 },
	{ .nr = __NR_linkat, .name = "linkat", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 2 },
	/* the new name, not the target */
	{ .nr = __NR_symlink, .name = "symlink", .kind = SYSCALL_PATH_CHANGE, .props.path_arg = 2 },
	{ .nr = __NR_symlinkat, .name = "symlinkat", .kind = SYSCALL_PATH_CHANGE,
	  .props.path_arg = 3 },

	/* processes; a new thread is not one (clone3's flags are clone_args.flags) */
	{ .nr = __NR_clone, .name = "clone", .kind = SYSCALL_FORK,
	  .props = { .skip_arg = 1, .skip_mask = CLONE_THREAD } },
	{ .nr = __NR_clone3, .name = "clone3", .kind = SYSCALL_FORK,
	  .props = { .flags = SC_SKIP_INDIRECT, .skip_arg = 1, .skip_mask = CLONE_THREAD } },
	{ .nr = __NR_fork, .name = "fork", .kind = SYSCALL_FORK },
	{ .nr = __NR_vfork, .name = "vfork", .kind = SYSCALL_FORK },
	{ .nr = __NR_execve, .name = "execve", .kind = SYSCALL_EXEC, .props.path_arg = 1 },
	{ .nr = __NR_execveat, .name = "execveat", .kind = SYSCALL_EXEC, .props.path_arg = 2 },
	{ .nr = __NR_wait4, .name = "wait4", .kind = SYSCALL_WAIT_CHILD },
	{ .nr = __NR_waitid, .name = "waitid", .kind = SYSCALL_WAIT_CHILD },
	{ .nr = __NR_kill, .name = "kill", .kind = SYSCALL_KILL },

	/* the loop's own wait: asyncio calls epoll_wait, uvloop (libuv) epoll_pwait */
	{ .nr = __NR_epoll_wait, .name = "epoll_wait", .kind = SYSCALL_LOOP_WAIT },
	{ .nr = __NR_epoll_pwait, .name = "epoll_pwait", .kind = SYSCALL_LOOP_WAIT },
	{ .nr = __NR_epoll_pwait2, .name = "epoll_pwait2", .kind = SYSCALL_LOOP_WAIT },
};

const size_t syscall_table_len = sizeof(syscall_table) / sizeof(syscall_table[0]);

const struct syscall_info *syscall_info(unsigned int nr)
{
	for (size_t i = 0; i < syscall_table_len; i++)
		if (syscall_table[i].nr == nr)
			return &syscall_table[i];
	return NULL;
}

const char *syscall_event(const struct syscall_info *s)
{
	return s->event ? s->event : s->name;
}
