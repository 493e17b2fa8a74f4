/* SPDX-License-Identifier: GPL-2.0 */
/* Holding a process stopped for user space (bpf/hold.bpf.c). */
#ifndef AIOCOPD_HOLD_BPF_H
#define AIOCOPD_HOLD_BPF_H

/*
 * Stops the calling process and tells user space with a record of this type, which is what
 * makes user space continue it: 1 if held, 0 if it runs on (no record room, a full map, or
 * no live aiocopd to continue it).
 */
int hold_for_user_space(__u32 type, __u32 pid);

#endif /* AIOCOPD_HOLD_BPF_H */
