/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Where in an x86-64 function's first bytes a uprobe costs least. The kernel emulates a
 * probed push (and branches and nops) in the trap itself; any other instruction is copied
 * out of line and single-stepped, a second trap. On a virtual machine that second trap can
 * cost ten times the first (measured in docs/PERFORMANCE.md), so a probe is better placed on
 * the first push of the prologue when nothing before it changes what the program reads.
 */
#ifndef AIOCOPD_PROLOGUE_H
#define AIOCOPD_PROLOGUE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a function's start that prologue_push_offset looks at. */
#define PROLOGUE_BYTES		16

/*
 * Offset of the first push in code[0..len), allowing before it only what leaves every
 * argument register as it was at the call: endbr64 and, with skip_null_check, a
 * `test %rdi,%rdi` with the `je` after it (the function's early return for a NULL first
 * argument, a call that then never reaches the probe). -1 when the prologue is anything else.
 */
int prologue_push_offset(const uint8_t *code, size_t len, int skip_null_check);

#endif /* AIOCOPD_PROLOGUE_H */
