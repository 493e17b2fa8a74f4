// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_elf.c - libFuzzer harness for the ELF reader (src/elf_file.c).
 *
 * The input is the whole file. elf_file_open() takes a path (it opens what a target
 * mapped), so the input is written to a memfd and opened through /proc/self/fd. Whatever
 * opens, every query aiocopd makes of a CPython binary is asked, and what they return must
 * lie inside the file: a file offset past its end would become a uprobe on nothing.
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elf_file.h"

#define require(cond)	do { if (!(cond)) abort(); } while (0)

/* What target.c and probes.c look up, and names that exercise the suffix rules. */
static const char *const symbols[] = {
	"_PyRuntime", "Py_Version", "_PyEval_EvalFrameDefault", "PySys_Audit",
	"main", "fuzz_fn", "fuzz_clone", "x", "",
};

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	memfd = memfd_create("fuzz-elf", MFD_CLOEXEC);
	require(memfd >= 0);
	snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
	return 0;
}

/* A file offset elf_file.h hands out must point at bytes of the file. */
static void check_offset(const struct elf_file *ef, uint64_t vaddr, uint64_t size)
{
	uint64_t off;
	unsigned char byte[8];

	if (elf_file_vaddr_to_offset(ef, vaddr, &off) == 0)
		require(off < size);
	elf_file_read_vaddr(ef, vaddr, byte, sizeof(byte));
	elf_file_read_vaddr(ef, vaddr, byte, 1);
}

static void check_symbols(const struct elf_file *ef, uint64_t size)
{
	uint64_t vaddr, symsize;

	for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++)
		for (int suffix = 0; suffix < 2; suffix++)
			if (elf_file_find_symbol(ef, symbols[i], suffix, &vaddr, &symsize) == 0)
				check_offset(ef, vaddr, size);
}

static void check_usdt(const struct elf_file *ef, uint64_t size)
{
	struct elf_usdt_site sites[4];
	size_t n = 0;

	if (elf_file_usdt_sites(ef, "python", "function__entry", sites, 4, &n) == 0 ||
	    n > 0) {
		require(n <= 4);
		for (size_t i = 0; i < n; i++)
			require(sites[i].offset < size && sites[i].ref_ctr_offset < size);
	}
	elf_file_usdt_sites(ef, "fuzz", "twice", sites, 1, &n);
}

static void check_file(const struct elf_file *ef, uint64_t size)
{
	unsigned char id[ELF_BUILD_ID_MAX];
	struct elf_file_id ident;
	uint64_t a, b;
	size_t len;

	elf_file_identity(ef, &ident);
	require(ident.size == size);
	elf_file_type(ef);
	if (elf_file_entry_offset(ef, &a) == 0)
		require(a < size);
	if (elf_file_build_id(ef, id, sizeof(id), &len) == 0)
		require(len > 0 && len <= sizeof(id));
	elf_file_build_id(ef, id, 1, &len);
	elf_file_has_symtab(ef);
	check_symbols(ef, size);
	if (elf_file_find_section(ef, ".PyRuntime", &a, &b) == 0)
		check_offset(ef, a, size);
	elf_file_find_section(ef, ".note.stapsdt", &a, &b);
	if (elf_file_first_load(ef, &a, &b) == 0)
		check_offset(ef, a, size);
	check_usdt(ef, size);
	check_offset(ef, 0, size);
	check_offset(ef, UINT64_MAX - 4, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct elf_file *ef = NULL;

	require(ftruncate(memfd, 0) == 0);
	require(pwrite(memfd, data, size, 0) == (ssize_t)size);
	if (elf_file_open(memfd_path, &ef) == 0) {
		require(ef);
		check_file(ef, size);
		elf_file_close(ef);
	} else {
		require(!ef);
	}
	return 0;
}
