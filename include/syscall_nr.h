/* SPDX-License-Identifier: GPL-2.0 */
/*
 * x86-64 numbers of the syscalls aiocopd traces, shared by the BPF programs (which cannot
 * include libc headers) and the user-space classifier.
 */
#ifndef AIOCOPD_SYSCALL_NR_H
#define AIOCOPD_SYSCALL_NR_H

#define NR_read			0
#define NR_write		1
#define NR_open			2
#define NR_stat			4
#define NR_lstat		6
#define NR_poll			7
#define NR_pread64		17
#define NR_pwrite64		18
#define NR_readv		19
#define NR_writev		20
#define NR_access		21
#define NR_select		23
#define NR_nanosleep		35
#define NR_sendfile		40
#define NR_connect		42
#define NR_accept		43
#define NR_sendto		44
#define NR_recvfrom		45
#define NR_sendmsg		46
#define NR_recvmsg		47
#define NR_clone		56
#define NR_fork			57
#define NR_vfork		58
#define NR_execve		59
#define NR_wait4		61
#define NR_kill			62
#define NR_flock		73
#define NR_fsync		74
#define NR_fdatasync		75
#define NR_truncate		76
#define NR_ftruncate		77
#define NR_rename		82
#define NR_mkdir		83
#define NR_rmdir		84
#define NR_creat		85
#define NR_link			86
#define NR_unlink		87
#define NR_symlink		88
#define NR_readlink		89
#define NR_statfs		137
#define NR_getdents64		217
#define NR_clock_nanosleep	230
#define NR_epoll_wait		232
#define NR_waitid		247
#define NR_openat		257
#define NR_mkdirat		258
#define NR_newfstatat		262
#define NR_unlinkat		263
#define NR_renameat		264
#define NR_linkat		265
#define NR_symlinkat		266
#define NR_readlinkat		267
#define NR_faccessat		269
#define NR_pselect6		270
#define NR_ppoll		271
#define NR_epoll_pwait		281
#define NR_accept4		288
#define NR_preadv		295
#define NR_pwritev		296
#define NR_renameat2		316
#define NR_execveat		322
#define NR_copy_file_range	326
#define NR_statx		332
#define NR_clone3		435
#define NR_openat2		437
#define NR_faccessat2		439
#define NR_epoll_pwait2		441

#endif /* AIOCOPD_SYSCALL_NR_H */
