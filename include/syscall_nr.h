/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The syscall numbers src/monitor.c still names. They come from the kernel headers; what
 * aiocopd traces, and what each of these calls is, is src/syscall_table.c. Remove this
 * header once monitor.c asks the table (kind, props.fd_arg, props.operand_arg) instead.
 */
#ifndef AIOCOPD_SYSCALL_NR_H
#define AIOCOPD_SYSCALL_NR_H

#include <asm/unistd.h>

#define NR_open			__NR_open
#define NR_creat		__NR_creat
#define NR_openat		__NR_openat
#define NR_openat2		__NR_openat2
#define NR_connect		__NR_connect
#define NR_sendto		__NR_sendto
#define NR_sendfile		__NR_sendfile
#define NR_nanosleep		__NR_nanosleep
#define NR_clock_nanosleep	__NR_clock_nanosleep
#define NR_epoll_wait		__NR_epoll_wait
#define NR_epoll_pwait		__NR_epoll_pwait
#define NR_epoll_pwait2		__NR_epoll_pwait2

#endif /* AIOCOPD_SYSCALL_NR_H */
