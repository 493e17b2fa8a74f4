/*
 * elf_file.h - read-only access to the ELF files of profiled processes.
 *
 * Owns everything aiocopd needs from an on-disk ELF object: its identity,
 * type and build id, symbol and section lookup, vaddr -> file offset
 * translation (for uprobes), USDT probe sites, the first PT_LOAD (for the
 * load bias), reading constants out of file-backed segments, and locating
 * separate debug files.
 *
 * The files belong to processes we do not trust, so every byte is hostile:
 * all offsets and lengths are checked against the file size captured at
 * open time, every loop is bounded by the file, and malformed or truncated
 * files produce errors, never crashes.  Only 64-bit ELF in host byte order
 * is accepted.
 */
#ifndef AIOCOPD_ELF_FILE_H
#define AIOCOPD_ELF_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

/* Longest build id we accept; real ones are 8 to 20 bytes. */
#define ELF_BUILD_ID_MAX	64

struct elf_file;

/* What names the opened file, from fstat at open: caches of per-file facts key on it. */
struct elf_file_id {
	uint64_t dev, ino, size;
	int64_t mtime_ns;
};

/* One SystemTap USDT probe site, as a uprobe wants it. */
struct elf_usdt_site {
	uint64_t offset;		/* file offset of the probe's nop */
	uint64_t ref_ctr_offset;	/* file offset of its semaphore, 0: none */
};

/* 0 or -errno; -ENOEXEC: not ELF, not 64-bit, other byte order, malformed. */
int elf_file_open(const char *path, struct elf_file **out);
void elf_file_close(struct elf_file *ef);

void elf_file_identity(const struct elf_file *ef, struct elf_file_id *id);
/* The identity of the file st describes, and whether two identities are the same file. */
void elf_file_id_of(const struct stat *st, struct elf_file_id *id);
bool elf_file_id_equal(const struct elf_file_id *a, const struct elf_file_id *b);

/* e_type: ET_EXEC, ET_DYN, ... (see <elf.h>). */
int elf_file_type(const struct elf_file *ef);

/* File offset of the entry point (e_entry), where a new program's first instruction is. */
int elf_file_entry_offset(const struct elf_file *ef, uint64_t *offset);

/*
 * NT_GNU_BUILD_ID from a PT_NOTE segment, else from an SHT_NOTE section.
 * 0 with *len set, -ENOENT if none, -ENOSPC if bufsz is too small (*len is
 * then the size needed).
 */
int elf_file_build_id(const struct elf_file *ef, unsigned char *buf,
		      size_t bufsz, size_t *len);

/*
 * Symbol lookup in .symtab, then .dynsym.  Matches the exact name or, with
 * allow_suffix, the name followed by '.' and anything (GCC/LTO clones such
 * as "context_run.lto_priv.0" or "foo.isra.0").  ".cold" fragments are
 * never matched: they are split-off blocks, not function entries.
 *
 * Preference: exact over suffix, and defined symbols with a non-zero value
 * over defined ones with value 0 (e.g. a TLS offset 0).  Undefined symbols
 * (imports) are never returned: their value is not an address in this
 * file.  Ties go to the first symbol in table order.  vaddr and size may be
 * NULL.  0 or -ENOENT.
 */
int elf_file_find_symbol(const struct elf_file *ef, const char *name,
			 bool allow_suffix, uint64_t *vaddr, uint64_t *size);

/* 1 if a non-empty .symtab (more than the null symbol) is present, else 0. */
int elf_file_has_symtab(const struct elf_file *ef);

/* sh_addr and sh_size of the first section called name.  0 or -ENOENT. */
int elf_file_find_section(const struct elf_file *ef, const char *name,
			  uint64_t *vaddr, uint64_t *size);

/*
 * File offset of vaddr through the PT_LOAD headers.  -ENOENT unless a
 * PT_LOAD covers vaddr with bytes actually present in the file.
 */
int elf_file_vaddr_to_offset(const struct elf_file *ef, uint64_t vaddr,
			     uint64_t *offset);

/*
 * Sites of the USDT probe provider:name, from the NT_STAPSDT notes of
 * .note.stapsdt in note order, addresses moved by .stapsdt.base as prelink
 * moved the file.  A site whose probe is not in an executable segment, or
 * whose semaphore is not in a writable one, is left out.  0 with *n sites
 * written, -ENOENT if none, -ENOSPC when there were more than max (the
 * first max are written).
 */
int elf_file_usdt_sites(const struct elf_file *ef, const char *provider,
			const char *name, struct elf_usdt_site *sites,
			size_t max, size_t *n);

/*
 * The PT_LOAD with the lowest p_vaddr, as the kernel maps it: p_vaddr
 * rounded down to the page size, and p_offset rounded down by the same
 * amount.  That pair matches the start/offset of its /proc/PID/maps line,
 * so bias = map_start - *vaddr.  0, -ENOENT (no PT_LOAD) or -ENOEXEC.
 */
int elf_file_first_load(const struct elf_file *ef, uint64_t *vaddr,
			uint64_t *offset);

/*
 * Copy len file-backed bytes at vaddr into buf.  -ENOENT if vaddr is not
 * file-backed, -ERANGE if [vaddr, vaddr + len) runs past the file-backed
 * part of its segment, -EIO if the file shrank under us.
 */
int elf_file_read_vaddr(const struct elf_file *ef, uint64_t vaddr, void *buf,
			size_t len);

/*
 * Separate debug file for a build id: <debug_root>/.build-id/<xx>/<rest>.debug
 * (debug_root NULL means "/usr/lib/debug").  It must exist, be a usable ELF
 * file and carry the same build id.  Writes the path on success.  0,
 * -ENOENT (missing or different build id), -EINVAL (build id length),
 * -ENAMETOOLONG, or another -errno from opening it.
 */
int elf_debuginfo_path(const char *debug_root, const unsigned char *build_id,
		       size_t len, char *path, size_t pathsz);

#endif /* AIOCOPD_ELF_FILE_H */
