// SPDX-License-Identifier: GPL-2.0
/*
 * Reads from a target process: its memory through process_vm_readv, its /proc files through
 * bounded read(2). The target is untrusted, so lengths are capped and partial reads fail.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "procmem.h"

int procmem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };
	ssize_t n;

	if (!addr || len == 0 || len > PROCMEM_MAX_READ)
		return -EINVAL;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

int procmem_read_u64(pid_t pid, uint64_t addr, uint64_t *val)
{
	return procmem_read(pid, addr, val, sizeof(*val));
}

int procmem_read_cstr(pid_t pid, uint64_t addr, char *buf, size_t bufsz)
{
	size_t got = 0;

	if (bufsz == 0)
		return -EINVAL;
	buf[0] = 0;
	/* read in small chunks that stay inside one page so a string near a hole still reads */
	while (got + 1 < bufsz) {
		uint64_t a = addr + got;
		size_t chunk = 4096 - (a & 4095);
		char *nul;
		int err;

		if (chunk > bufsz - 1 - got)
			chunk = bufsz - 1 - got;
		err = procmem_read(pid, a, buf + got, chunk);
		if (err)
			return got ? 0 : err;
		nul = memchr(buf + got, 0, chunk);
		if (nul)
			return 0;
		got += chunk;
		buf[got] = 0;
	}
	buf[bufsz - 1] = 0;
	return 0;
}

ssize_t proc_read_file(const char *path, char *buf, size_t bufsz)
{
	size_t got = 0;
	int fd;

	if (bufsz == 0)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (got + 1 < bufsz) {
		ssize_t n = read(fd, buf + got, bufsz - 1 - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			n = -errno;
			close(fd);
			return n;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = 0;
	return got;
}
