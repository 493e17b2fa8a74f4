/*
 * test_prologue.c - unit tests for src/prologue.c: where in a function's first bytes a
 * uprobe lands on a push (which the kernel emulates) without skipping anything that changes
 * an argument register. The byte strings are the first instructions of CPython's functions as
 * objdump shows them in the builds named; the last tests read sys_audit_tstate out of the
 * installed interpreters with the ELF reader and check the offset against objdump's listing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "elf_file.h"
#include "prologue.h"

#define PYENV_311	"/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"
#define PYENV_312	"/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"
#define DEBIAN_311	"/usr/bin/python3.11"
#define DEBIAN_311_DBG	"/usr/lib/debug/.build-id/c5/61f3aa7232f2bd6ac6d56bd475f1c154a00486.debug"

/* pyenv 3.11.7 sys_audit_tstate: test %rdi,%rdi; je rel32; push %r15; push %r14 */
static const uint8_t pyenv_sys_audit[] = { 0x48, 0x85, 0xff, 0x0f, 0x84, 0x47, 0x04, 0x00,
					   0x00, 0x41, 0x57, 0x41, 0x56 };
/* Debian 3.11.2 sys_audit_tstate.lto_priv.0: push %r15; push %r14 */
static const uint8_t debian_sys_audit[] = { 0x41, 0x57, 0x41, 0x56, 0x41, 0x55 };
/* PySys_Audit in both: sub $0xd8,%rsp; mov %rdx,0x30(%rsp) */
static const uint8_t pysys_audit[] = { 0x48, 0x81, 0xec, 0xd8, 0x00, 0x00, 0x00, 0x48, 0x89,
				       0x54, 0x24, 0x30 };

static void test_push_first(void **state)
{
	static const uint8_t push_rbp[] = { 0x55, 0x48, 0x89, 0xe5 };

	assert_int_equal(prologue_push_offset(debian_sys_audit, sizeof(debian_sys_audit), 1), 0);
	assert_int_equal(prologue_push_offset(debian_sys_audit, sizeof(debian_sys_audit), 0), 0);
	assert_int_equal(prologue_push_offset(push_rbp, sizeof(push_rbp), 0), 0);
}

static void test_null_check_skipped_only_when_allowed(void **state)
{
	assert_int_equal(prologue_push_offset(pyenv_sys_audit, sizeof(pyenv_sys_audit), 1), 9);
	assert_int_equal(prologue_push_offset(pyenv_sys_audit, sizeof(pyenv_sys_audit), 0), -1);
}

static void test_short_je(void **state)
{
	/* test %rdi,%rdi; je rel8; push %rbx */
	static const uint8_t code[] = { 0x48, 0x85, 0xff, 0x74, 0x10, 0x53 };

	assert_int_equal(prologue_push_offset(code, sizeof(code), 1), 5);
}

static void test_endbr64(void **state)
{
	static const uint8_t code[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x41, 0x54 };
	static const uint8_t checked[] = { 0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x85, 0xff, 0x74, 0x02,
					   0x50 };

	assert_int_equal(prologue_push_offset(code, sizeof(code), 0), 4);
	assert_int_equal(prologue_push_offset(checked, sizeof(checked), 1), 9);
}

static void test_other_prologues_refused(void **state)
{
	/* Debian's PyContext_Enter: mov %rdi,%rsi (writes an argument register) */
	static const uint8_t mov[] = { 0x48, 0x89, 0xfe, 0x53 };
	/* a test of another register, or a test without its branch */
	static const uint8_t test_rsi[] = { 0x48, 0x85, 0xf6, 0x74, 0x10, 0x53 };
	static const uint8_t test_alone[] = { 0x48, 0x85, 0xff, 0x53 };
	/* jne is not the NULL return */
	static const uint8_t jne[] = { 0x48, 0x85, 0xff, 0x75, 0x10, 0x53 };
	/* a REX prefix other than 41 before 50+r is not a plain push */
	static const uint8_t rex_w[] = { 0x48, 0x50 };

	assert_int_equal(prologue_push_offset(pysys_audit, sizeof(pysys_audit), 1), -1);
	assert_int_equal(prologue_push_offset(mov, sizeof(mov), 1), -1);
	assert_int_equal(prologue_push_offset(test_rsi, sizeof(test_rsi), 1), -1);
	assert_int_equal(prologue_push_offset(test_alone, sizeof(test_alone), 1), -1);
	assert_int_equal(prologue_push_offset(jne, sizeof(jne), 1), -1);
	assert_int_equal(prologue_push_offset(rex_w, sizeof(rex_w), 1), -1);
}

static void test_truncated_input(void **state)
{
	assert_int_equal(prologue_push_offset(NULL, 16, 1), -1);
	assert_int_equal(prologue_push_offset(debian_sys_audit, 0, 1), -1);
	/* a REX prefix with its opcode cut off */
	assert_int_equal(prologue_push_offset(debian_sys_audit, 1, 1), -1);
	/* the je's displacement, or the push after it, cut off */
	for (size_t len = 0; len < 10; len++)
		assert_int_equal(prologue_push_offset(pyenv_sys_audit, len, 1), -1);
	assert_int_equal(prologue_push_offset(pyenv_sys_audit, 10, 1), -1);
	assert_int_equal(prologue_push_offset(pyenv_sys_audit, 11, 1), 9);
}

/* sys_audit_tstate's offset in an installed build: names is the file with its symbols. */
static int installed_offset(const char *code_file, const char *symbols_file)
{
	struct elf_file *code = NULL, *syms = NULL;
	uint8_t buf[PROLOGUE_BYTES];
	uint64_t vaddr, size;
	int at = -2;

	if (elf_file_open(code_file, &code) || elf_file_open(symbols_file, &syms))
		goto out;
	if (elf_file_find_symbol(syms, "sys_audit_tstate", true, &vaddr, &size) == 0 &&
	    elf_file_read_vaddr(code, vaddr, buf, sizeof(buf)) == 0)
		at = prologue_push_offset(buf, sizeof(buf), 1);
out:
	elf_file_close(syms);
	elf_file_close(code);
	return at;
}

static void need(const char *path)
{
	if (access(path, R_OK)) {
		print_message("SKIP: %s not installed\n", path);
		skip();
	}
}

static void test_installed_pyenv(void **state)
{
	need(PYENV_311);
	need(PYENV_312);
	/* objdump: test (3 bytes) and je rel32 (6 bytes), then push %r15 */
	assert_int_equal(installed_offset(PYENV_311, PYENV_311), 9);
	assert_int_equal(installed_offset(PYENV_312, PYENV_312), 9);
}

static void test_installed_debian(void **state)
{
	need(DEBIAN_311);
	need(DEBIAN_311_DBG);
	/* the symbol only in the debug file, the code in the stripped binary: push %r15 first */
	assert_int_equal(installed_offset(DEBIAN_311, DEBIAN_311_DBG), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_first),
		cmocka_unit_test(test_null_check_skipped_only_when_allowed),
		cmocka_unit_test(test_short_je),
		cmocka_unit_test(test_endbr64),
		cmocka_unit_test(test_other_prologues_refused),
		cmocka_unit_test(test_truncated_input),
		cmocka_unit_test(test_installed_pyenv),
		cmocka_unit_test(test_installed_debian),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
