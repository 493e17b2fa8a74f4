// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_pyresolve.c - libFuzzer harness for frame naming from target memory
 * (src/pyresolve.c, over src/procmem.c and src/linetable.c).
 *
 * The fuzz input is a fake target address space. aiocopd reads a target only through
 * process_vm_readv(2) (procmem.c), so this harness defines that function itself: the
 * linker binds procmem.c's calls to it instead of libc's, and every line of procmem.c and
 * pyresolve.c runs unchanged, with the "target" answering from the input. Like the
 * kernel, the fake returns a short count when a read runs off the end of what is mapped
 * and EFAULT when nothing at the address is.
 *
 * Input: a header (one byte: CPython 3.<minor>, whose layout row is used; u64 code object
 * address; u64 instruction: 3.10 f_lasti, else the byte offset from co_code_adaptive; u64
 * address of one more str object, as a task name), then regions until the input ends:
 * u64 address, u16 length, that many bytes. tests/fuzz/make_corpus.py writes real code
 * objects in this form.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "fuzz_input.h"
#include "pyresolve.h"

#define MAX_REGIONS	64
#define NAME_BUF	256

#define require(cond)	do { if (!(cond)) abort(); } while (0)

struct region {
	uint64_t addr;
	const uint8_t *bytes;
	size_t len;
};

static struct region regions[MAX_REGIONS];
static size_t nregions;

/* The fake address space: the first region holding addr answers, up to its end. */
ssize_t process_vm_readv(pid_t pid, const struct iovec *local, unsigned long liovcnt,
			 const struct iovec *remote, unsigned long riovcnt, unsigned long flags)
{
	uint64_t addr = (uintptr_t)remote[0].iov_base;
	size_t len = remote[0].iov_len;

	/* procmem.c reads one contiguous range into one buffer */
	require(liovcnt == 1 && riovcnt == 1 && flags == 0 && local[0].iov_len == len);
	/* the kernel may write all of the buffer: all of it must be the caller's */
	memset(local[0].iov_base, 0xa5, len);
	for (size_t i = 0; i < nregions; i++) {
		const struct region *r = &regions[i];
		size_t n;

		if (addr < r->addr || addr - r->addr >= r->len)
			continue;
		n = r->len - (addr - r->addr);
		if (n > len)
			n = len;
		memcpy(local[0].iov_base, r->bytes + (addr - r->addr), n);
		return (ssize_t)n;
	}
	errno = EFAULT;
	return -1;
}

static void load_regions(struct fuzz_input *in)
{
	nregions = 0;
	while (in->len && nregions < MAX_REGIONS) {
		struct region *r = &regions[nregions];

		r->addr = fuzz_take(in, 8);
		r->len = fuzz_take(in, 2);
		if (r->len > in->len)
			r->len = in->len;
		r->bytes = fuzz_take_bytes(in, r->len);
		nregions++;
	}
}

static void check_string(const char *s)
{
	require(s);
	require(strlen(s) < 4096);
}

static void check_location(const struct py_location *loc)
{
	check_string(loc->file);
	check_string(loc->function);
	check_string(loc->qualname);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = { data, size };
	const struct py_version_layout *layout = pylayout_find(3, (int)fuzz_take(&in, 1));
	uint64_t code = fuzz_take(&in, 8), instr = fuzz_take(&in, 8), name = fuzz_take(&in, 8);
	struct py_location first, again;
	struct pyresolver *r;
	char buf[NAME_BUF];

	if (!layout)
		return 0;
	if (!layout->user.instr_is_lasti)
		instr += code + layout->user.code_adaptive;
	load_regions(&in);
	r = pyresolver_new(1, layout);
	require(r);
	pyresolver_locate(r, code, instr, &first);
	check_location(&first);
	/* the second lookup is answered from the cache, and the same */
	pyresolver_locate(r, code, instr, &again);
	check_location(&again);
	require(!strcmp(first.file, again.file) && !strcmp(first.function, again.function) &&
		!strcmp(first.qualname, again.qualname) && first.line == again.line);
	pyresolver_locate(r, code + 16, instr + 2, &again);
	check_location(&again);
	pyresolver_free(r);

	if (pyresolver_read_str(1, layout, name, buf, sizeof(buf)) == 0)
		require(strlen(buf) < sizeof(buf));
	pyresolver_read_str(1, layout, name, buf, 2);
	return 0;
}
