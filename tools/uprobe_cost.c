// SPDX-License-Identifier: GPL-2.0
/*
 * What a uprobe hit costs, by the instruction it is placed on. The kernel emulates a probed
 * push (and branches and nops) inside the breakpoint trap; any other instruction is copied
 * out of line and single-stepped, which takes a second trap. Each function below starts with
 * one kind; probe them with perf (no BPF program: the traps alone) and compare the ns per
 * call with the unprobed run. Timed in thread CPU time, so other load does not count.
 *
 *   cc -O2 -o build/uprobe_cost tools/uprobe_cost.c
 *   perf probe -x build/uprobe_cost -a at_push -a at_sub -a at_mov
 *   build/uprobe_cost push                         # no probe enabled: the call alone
 *   perf stat -e probe_uprobe_cost:at_push -- build/uprobe_cost push
 *   perf stat -e probe_uprobe_cost:at_sub -- build/uprobe_cost sub
 *   perf probe -d 'probe_uprobe_cost:*'
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* push first: emulated, as in context_run and sys_audit_tstate */
__attribute__((naked, noinline)) void at_push(void)
{
	__asm__("push %rbp\n\tpop %rbp\n\tret\n");
}

/* sub first: single-stepped, as in PySys_Audit and _PySys_Audit */
__attribute__((naked, noinline)) void at_sub(void)
{
	__asm__("sub $8, %rsp\n\tadd $8, %rsp\n\tret\n");
}

/* mov first: single-stepped, as in Debian's PyContext_Enter */
__attribute__((naked, noinline)) void at_mov(void)
{
	__asm__("mov %rdi, %rax\n\tret\n");
}

static double thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	const char *kind = argc > 1 ? argv[1] : "push";
	long calls = argc > 2 ? atol(argv[2]) : 100000;
	void (*fn)(void) = !strcmp(kind, "sub") ? at_sub : !strcmp(kind, "mov") ? at_mov : at_push;
	double start;

	if (calls <= 0 || calls > 100000000) {
		fprintf(stderr, "usage: %s push|sub|mov [calls, 1 to 100000000]\n", argv[0]);
		return 2;
	}
	start = thread_cpu_s();
	for (long i = 0; i < calls; i++)
		fn();
	printf("%s: %.0f ns per call\n", kind, (thread_cpu_s() - start) / calls * 1e9);
	return 0;
}
