/*
 * elf_file.c - hostile-input-safe ELF reader (see include/elf_file.h).
 *
 * Owns the struct elf_file handle and all parsing of on-disk ELF objects.
 *
 * The file is opened with ELF_C_READ rather than an mmap: the traced
 * process may own the file and truncate it while we hold it, which would
 * turn a mapping into a SIGBUS, whereas pread() just comes up short.
 *
 * libelf's own checks are not what keeps us safe.  The ELF header and both
 * header tables are validated against the file size before libelf is handed
 * the file, a section's extent is checked before its data is requested, and
 * strings, symbols and notes are bounds-checked here as they are used.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf_file.h"

#define DEFAULT_DEBUG_ROOT	"/usr/lib/debug"

/* The kernel refuses to exec anything with a larger table (load_elf_phdrs). */
#define PHDRS_MAX_BYTES		65536

/* Build id notes are tiny; a huge note area is hostile, not interesting. */
#define NOTES_MAX_BYTES		(1U << 20)

/* SystemTap's USDT probe descriptor note type (not in glibc's <elf.h>). */
#define NT_STAPSDT		3

/* Longest clone suffix (".lto_priv.0", ".constprop.0.isra.0", ...) we parse. */
#define SYM_SUFFIX_MAX		256

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_ELFDATA		ELFDATA2LSB
#else
#define HOST_ELFDATA		ELFDATA2MSB
#endif

struct elf_file {
	int fd;
	Elf *elf;
	uint64_t size;		/* st_size at open; every offset is checked against it */
	struct elf_file_id id;	/* device, inode and mtime at open */
	int type;		/* e_type */
	uint64_t entry;		/* e_entry */
	size_t shnum;		/* section headers, known to lie inside the file */
	size_t shstrndx;	/* 0 when section names are unusable */
	GElf_Phdr *phdrs;	/* copy of the program headers */
	size_t phnum;
};

/* Symbol match quality, lower is better. */
enum sym_rank {
	RANK_EXACT = 0,
	RANK_SUFFIX = 1,
	RANK_EXACT_ZERO = 2,	/* defined, but st_value == 0 */
	RANK_SUFFIX_ZERO = 3,
	RANK_NONE = 4,
};

enum name_match {
	NAME_NONE,
	NAME_EXACT,
	NAME_SUFFIX,
};

struct sym_best {
	enum sym_rank rank;
	uint64_t value;
	uint64_t size;
};

/* [off, off + len) lies inside a file of the given size, without overflow. */
static bool range_ok(uint64_t off, uint64_t len, uint64_t size)
{
	return off <= size && len <= size - off;
}

static int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
	unsigned char *p = buf;
	ssize_t n;

	if (off > (uint64_t)LLONG_MAX - len)
		return -ERANGE;
	while (len > 0) {
		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* The file shrank since open: its contents can't be trusted. */
		if (n == 0)
			return -EIO;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- open / close ---------------------------------------------------- */

static bool ident_ok(const Elf64_Ehdr *eh)
{
	return memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 &&
	       eh->e_ident[EI_CLASS] == ELFCLASS64 &&
	       eh->e_ident[EI_DATA] == HOST_ELFDATA &&
	       eh->e_ident[EI_VERSION] == EV_CURRENT;
}

/*
 * Work out the real section and program header counts (including the
 * extended numbering kept in section header 0) and check that both tables
 * lie inside the file.  Done on raw bytes, before libelf reads anything.
 */
static int check_tables(struct elf_file *ef, const Elf64_Ehdr *eh)
{
	Elf64_Shdr sh0;
	uint64_t shnum = eh->e_shnum;
	uint64_t phnum = eh->e_phnum;
	uint64_t shstrndx = eh->e_shstrndx;
	int err;

	if (eh->e_shoff == 0 && shnum != 0)
		return -ENOEXEC;
	if (eh->e_phoff == 0 && phnum != 0)
		return -ENOEXEC;

	if (eh->e_shoff != 0) {
		if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
		    !range_ok(eh->e_shoff, sizeof(sh0), ef->size))
			return -ENOEXEC;
		err = pread_full(ef->fd, &sh0, sizeof(sh0), eh->e_shoff);
		if (err)
			return err == -EIO ? -ENOEXEC : err;
		if (shnum == 0)
			shnum = sh0.sh_size;
		if (phnum == PN_XNUM)
			phnum = sh0.sh_info;
		if (shstrndx == SHN_XINDEX)
			shstrndx = sh0.sh_link;
	} else if (phnum == PN_XNUM) {
		return -ENOEXEC;
	}

	if (shnum > ef->size / sizeof(Elf64_Shdr) ||
	    !range_ok(eh->e_shoff, shnum * sizeof(Elf64_Shdr), ef->size))
		return -ENOEXEC;
	if (phnum > 0 && eh->e_phentsize != sizeof(Elf64_Phdr))
		return -ENOEXEC;
	if (phnum > PHDRS_MAX_BYTES / sizeof(Elf64_Phdr) ||
	    !range_ok(eh->e_phoff, phnum * sizeof(Elf64_Phdr), ef->size))
		return -ENOEXEC;

	ef->shnum = shnum;
	ef->phnum = phnum;
	ef->shstrndx = shstrndx < shnum ? shstrndx : 0;
	return 0;
}

static int check_header(struct elf_file *ef)
{
	Elf64_Ehdr eh;
	int err;

	if (ef->size < sizeof(eh))
		return -ENOEXEC;
	err = pread_full(ef->fd, &eh, sizeof(eh), 0);
	if (err)
		return err == -EIO ? -ENOEXEC : err;
	if (!ident_ok(&eh))
		return -ENOEXEC;
	ef->type = eh.e_type;
	ef->entry = eh.e_entry;
	return check_tables(ef, &eh);
}

/* Hand the pre-checked file to libelf and make sure it agrees with us. */
static int begin_libelf(struct elf_file *ef)
{
	size_t shnum, phnum;

	ef->elf = elf_begin(ef->fd, ELF_C_READ, NULL);
	if (!ef->elf)
		return -ENOEXEC;
	if (elf_kind(ef->elf) != ELF_K_ELF ||
	    gelf_getclass(ef->elf) != ELFCLASS64)
		return -ENOEXEC;
	if (elf_getshdrnum(ef->elf, &shnum) || shnum != ef->shnum)
		return -ENOEXEC;
	if (elf_getphdrnum(ef->elf, &phnum) || phnum != ef->phnum)
		return -ENOEXEC;
	return 0;
}

static int load_phdrs(struct elf_file *ef)
{
	size_t i;

	if (ef->phnum == 0)
		return 0;
	ef->phdrs = calloc(ef->phnum, sizeof(*ef->phdrs));
	if (!ef->phdrs)
		return -ENOMEM;
	for (i = 0; i < ef->phnum; i++) {
		if (!gelf_getphdr(ef->elf, (int)i, &ef->phdrs[i]))
			return -ENOEXEC;
	}
	return 0;
}

int elf_file_open(const char *path, struct elf_file **out)
{
	struct elf_file *ef;
	struct stat st;
	int err;

	if (!path || !out)
		return -EINVAL;
	*out = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;

	ef = calloc(1, sizeof(*ef));
	if (!ef)
		return -ENOMEM;
	/* O_NONBLOCK: a FIFO planted at the path must not hang the daemon. */
	ef->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (ef->fd < 0) {
		err = -errno;
		goto err_free;
	}
	if (fstat(ef->fd, &st) < 0) {
		err = -errno;
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -ENOEXEC;
		goto err_close;
	}
	ef->size = (uint64_t)st.st_size;
	elf_file_id_of(&st, &ef->id);

	err = check_header(ef);
	if (err)
		goto err_close;
	err = begin_libelf(ef);
	if (err)
		goto err_close;
	err = load_phdrs(ef);
	if (err)
		goto err_close;

	*out = ef;
	return 0;

err_close:
	elf_file_close(ef);
	return err;
err_free:
	free(ef);
	return err;
}

void elf_file_close(struct elf_file *ef)
{
	if (!ef)
		return;
	if (ef->elf)
		elf_end(ef->elf);
	if (ef->fd >= 0)
		close(ef->fd);
	free(ef->phdrs);
	free(ef);
}

int elf_file_type(const struct elf_file *ef)
{
	return ef->type;
}

void elf_file_identity(const struct elf_file *ef, struct elf_file_id *id)
{
	*id = ef->id;
}

void elf_file_id_of(const struct stat *st, struct elf_file_id *id)
{
	id->dev = (uint64_t)st->st_dev;
	id->ino = (uint64_t)st->st_ino;
	id->size = (uint64_t)st->st_size;
	id->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

bool elf_file_id_equal(const struct elf_file_id *a, const struct elf_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

int elf_file_entry_offset(const struct elf_file *ef, uint64_t *offset)
{
	if (!ef->entry)
		return -ENOENT;
	return elf_file_vaddr_to_offset(ef, ef->entry, offset);
}

/* ---- sections and strings -------------------------------------------- */

static Elf_Scn *section_at(const struct elf_file *ef, size_t idx,
			   GElf_Shdr *sh)
{
	Elf_Scn *scn;

	if (idx == 0 || idx >= ef->shnum)
		return NULL;
	scn = elf_getscn(ef->elf, idx);
	if (!scn || !gelf_getshdr(scn, sh))
		return NULL;
	return scn;
}

/*
 * The section's bytes, or NULL if it has none in the file.  The extent
 * check comes first so libelf never allocates or reads on our behalf for a
 * section that claims to be larger than the file.
 */
static Elf_Data *section_bytes(const struct elf_file *ef, Elf_Scn *scn,
			       const GElf_Shdr *sh)
{
	Elf_Data *data;

	if (sh->sh_type == SHT_NOBITS || sh->sh_size == 0 ||
	    (sh->sh_flags & SHF_COMPRESSED) ||
	    !range_ok(sh->sh_offset, sh->sh_size, ef->size))
		return NULL;
	data = elf_getdata(scn, NULL);
	if (!data || !data->d_buf || data->d_size == 0 ||
	    data->d_size > sh->sh_size)
		return NULL;
	return data;
}

/* A string table by section index, e.g. a symbol table's sh_link. */
static Elf_Data *strtab_at(const struct elf_file *ef, size_t idx)
{
	GElf_Shdr sh;
	Elf_Scn *scn;

	scn = section_at(ef, idx, &sh);
	if (!scn || sh.sh_type != SHT_STRTAB)
		return NULL;
	return section_bytes(ef, scn, &sh);
}

/*
 * Is the suffix (starting at its '.') a clone we accept?  ".cold" parts
 * are the unlikely blocks GCC splits off a function, never its entry, and
 * they often precede the real symbol in the table.
 */
static bool suffix_ok(const char *s, size_t avail)
{
	const char *end, *part;
	size_t limit = avail < SYM_SUFFIX_MAX ? avail : SYM_SUFFIX_MAX;

	end = memchr(s, '\0', limit);
	if (!end)
		return false;
	part = s;
	while (part < end) {
		const char *next;

		part++;		/* skip the '.' */
		next = memchr(part, '.', (size_t)(end - part));
		if (!next)
			next = end;
		if (next - part == 4 && memcmp(part, "cold", 4) == 0)
			return false;
		part = next;
	}
	return true;
}

/*
 * Compare the string at off in a string table with name.  Reads at most
 * namelen + 1 bytes plus a bounded suffix, all inside the table, so an
 * unterminated or out-of-range name costs nothing but a mismatch.
 */
static enum name_match match_name(const Elf_Data *strs, uint64_t off,
				  const char *name, size_t namelen,
				  bool allow_suffix)
{
	const char *s;
	size_t avail;

	if (off >= strs->d_size)
		return NAME_NONE;
	avail = strs->d_size - off;
	if (avail <= namelen)
		return NAME_NONE;
	s = (const char *)strs->d_buf + off;
	if (memcmp(s, name, namelen) != 0)
		return NAME_NONE;
	if (s[namelen] == '\0')
		return NAME_EXACT;
	if (allow_suffix && s[namelen] == '.' &&
	    suffix_ok(s + namelen, avail - namelen))
		return NAME_SUFFIX;
	return NAME_NONE;
}

/* The header of the first section called name.  0 or -ENOENT. */
static int section_named(const struct elf_file *ef, const char *name,
			 GElf_Shdr *sh)
{
	Elf_Data *names;
	size_t i, namelen;

	names = strtab_at(ef, ef->shstrndx);
	if (!names)
		return -ENOENT;
	namelen = strlen(name);
	for (i = 1; i < ef->shnum; i++) {
		if (!section_at(ef, i, sh))
			continue;
		if (match_name(names, sh->sh_name, name, namelen, false) ==
		    NAME_EXACT)
			return 0;
	}
	return -ENOENT;
}

int elf_file_find_section(const struct elf_file *ef, const char *name,
			  uint64_t *vaddr, uint64_t *size)
{
	GElf_Shdr sh;

	if (!name)
		return -EINVAL;
	if (section_named(ef, name, &sh))
		return -ENOENT;
	if (vaddr)
		*vaddr = sh.sh_addr;
	if (size)
		*size = sh.sh_size;
	return 0;
}

/* ---- symbols ---------------------------------------------------------- */

int elf_file_has_symtab(const struct elf_file *ef)
{
	GElf_Shdr sh;
	size_t i;

	for (i = 1; i < ef->shnum; i++) {
		if (!section_at(ef, i, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		/* Entry 0 is the null symbol; an empty table has only that. */
		if (sh.sh_size / sizeof(Elf64_Sym) > 1 &&
		    range_ok(sh.sh_offset, sh.sh_size, ef->size))
			return 1;
	}
	return 0;
}

static enum sym_rank rank_symbol(const GElf_Sym *sym, enum name_match m)
{
	enum sym_rank rank = m == NAME_EXACT ? RANK_EXACT : RANK_SUFFIX;

	if (sym->st_value == 0)
		rank += RANK_EXACT_ZERO;
	return rank;
}

/* Section and file symbols carry names but no address worth returning. */
static bool symbol_usable(const GElf_Sym *sym)
{
	int type = GELF_ST_TYPE(sym->st_info);

	return sym->st_shndx != SHN_UNDEF && type != STT_SECTION &&
	       type != STT_FILE;
}

static void search_symtab(const struct elf_file *ef, Elf_Scn *scn,
			  const GElf_Shdr *sh, const char *name,
			  size_t namelen, bool allow_suffix,
			  struct sym_best *best)
{
	Elf_Data *syms, *strs;
	enum name_match m;
	enum sym_rank rank;
	GElf_Sym sym;
	size_t i, count;

	strs = strtab_at(ef, sh->sh_link);
	syms = section_bytes(ef, scn, sh);
	if (!strs || !syms)
		return;
	count = syms->d_size / sizeof(Elf64_Sym);
	for (i = 1; i < count && best->rank != RANK_EXACT; i++) {
		if (!gelf_getsym(syms, (int)i, &sym))
			break;
		if (!symbol_usable(&sym))
			continue;
		m = match_name(strs, sym.st_name, name, namelen, allow_suffix);
		if (m == NAME_NONE)
			continue;
		rank = rank_symbol(&sym, m);
		if (rank < best->rank) {
			best->rank = rank;
			best->value = sym.st_value;
			best->size = sym.st_size;
		}
	}
}

static void search_tables(const struct elf_file *ef, uint32_t type,
			  const char *name, size_t namelen, bool allow_suffix,
			  struct sym_best *best)
{
	GElf_Shdr sh;
	Elf_Scn *scn;
	size_t i;

	for (i = 1; i < ef->shnum && best->rank != RANK_EXACT; i++) {
		scn = section_at(ef, i, &sh);
		if (!scn || sh.sh_type != type)
			continue;
		search_symtab(ef, scn, &sh, name, namelen, allow_suffix, best);
	}
}

int elf_file_find_symbol(const struct elf_file *ef, const char *name,
			 bool allow_suffix, uint64_t *vaddr, uint64_t *size)
{
	struct sym_best best = { .rank = RANK_NONE };
	size_t namelen;

	if (!name || !name[0])
		return -EINVAL;
	namelen = strlen(name);
	search_tables(ef, SHT_SYMTAB, name, namelen, allow_suffix, &best);
	search_tables(ef, SHT_DYNSYM, name, namelen, allow_suffix, &best);
	if (best.rank == RANK_NONE)
		return -ENOENT;
	if (vaddr)
		*vaddr = best.value;
	if (size)
		*size = best.size;
	return 0;
}

/* ---- notes ------------------------------------------------------------ */

struct note {
	uint32_t type;
	uint32_t namesz, descsz;
	const unsigned char *name, *desc;
};

/* Next note field position: aligned from the note area's start, capped at n. */
static size_t note_advance(size_t pos, size_t align, size_t n)
{
	pos = (pos + align - 1) & ~(align - 1);
	return pos < n ? pos : n;
}

/*
 * The note at *pos of a note area, advancing *pos past it.  Each step
 * consumes at least a header, and name and desc are checked against what
 * is left, so any byte soup ends the walk: false at the end or at the
 * first note that does not fit.
 */
static bool next_note(const unsigned char *p, size_t n, size_t align,
		      size_t *pos, struct note *out)
{
	Elf64_Nhdr nh;

	if (n - *pos < sizeof(nh))
		return false;
	memcpy(&nh, p + *pos, sizeof(nh));
	*pos += sizeof(nh);
	if (nh.n_namesz > n - *pos)
		return false;
	out->name = p + *pos;
	*pos = note_advance(*pos + nh.n_namesz, align, n);
	if (nh.n_descsz > n - *pos)
		return false;
	out->desc = p + *pos;
	*pos = note_advance(*pos + nh.n_descsz, align, n);
	out->type = nh.n_type;
	out->namesz = nh.n_namesz;
	out->descsz = nh.n_descsz;
	return true;
}

static bool note_is(const struct note *nt, uint32_t type, const char *name)
{
	size_t len = strlen(name) + 1;

	return nt->type == type && nt->namesz == len &&
	       memcmp(nt->name, name, len) == 0;
}

/* A note area's bytes, bounded: free() them.  0, -ENOENT or -ENOMEM. */
static int read_notes(const struct elf_file *ef, uint64_t off, uint64_t size,
		      unsigned char **out)
{
	unsigned char *notes;
	int err;

	if (size < sizeof(Elf64_Nhdr) || size > NOTES_MAX_BYTES ||
	    !range_ok(off, size, ef->size))
		return -ENOENT;
	notes = malloc(size);
	if (!notes)
		return -ENOMEM;
	err = pread_full(ef->fd, notes, size, off);
	if (err) {
		free(notes);
		return err == -EIO ? -ENOENT : err;
	}
	*out = notes;
	return 0;
}

/* ---- build id --------------------------------------------------------- */

static int parse_build_id(const unsigned char *p, size_t n, size_t align,
			  unsigned char *buf, size_t bufsz, size_t *len)
{
	struct note nt;
	size_t pos = 0;

	while (next_note(p, n, align, &pos, &nt)) {
		if (!note_is(&nt, NT_GNU_BUILD_ID, "GNU") || nt.descsz == 0)
			continue;
		*len = nt.descsz;
		if (nt.descsz > bufsz)
			return -ENOSPC;
		memcpy(buf, nt.desc, nt.descsz);
		return 0;
	}
	return -ENOENT;
}

/* Notes are 4-byte aligned unless their container says 8 (gABI). */
static int build_id_at(const struct elf_file *ef, uint64_t off, uint64_t size,
		       uint64_t container_align, unsigned char *buf,
		       size_t bufsz, size_t *len)
{
	unsigned char *notes;
	int err;

	err = read_notes(ef, off, size, &notes);
	if (err)
		return err;
	err = parse_build_id(notes, size, container_align == 8 ? 8 : 4,
			     buf, bufsz, len);
	free(notes);
	return err;
}

int elf_file_build_id(const struct elf_file *ef, unsigned char *buf,
		      size_t bufsz, size_t *len)
{
	const GElf_Phdr *ph;
	GElf_Shdr sh;
	size_t i;
	int err;

	if (!buf || !len)
		return -EINVAL;
	for (i = 0; i < ef->phnum; i++) {
		ph = &ef->phdrs[i];
		if (ph->p_type != PT_NOTE)
			continue;
		err = build_id_at(ef, ph->p_offset, ph->p_filesz, ph->p_align,
				  buf, bufsz, len);
		if (err != -ENOENT)
			return err;
	}
	/* Files without program headers (relocatables) keep it in a section. */
	for (i = 1; i < ef->shnum; i++) {
		if (!section_at(ef, i, &sh) || sh.sh_type != SHT_NOTE ||
		    (sh.sh_flags & SHF_COMPRESSED))
			continue;
		err = build_id_at(ef, sh.sh_offset, sh.sh_size, sh.sh_addralign,
				  buf, bufsz, len);
		if (err != -ENOENT)
			return err;
	}
	return -ENOENT;
}

/* ---- addresses -------------------------------------------------------- */

/* Bytes of a PT_LOAD that really come from the file. */
static uint64_t load_file_bytes(const struct elf_file *ef, const GElf_Phdr *ph)
{
	uint64_t n = ph->p_filesz;

	if (n > ph->p_memsz)
		n = ph->p_memsz;
	if (ph->p_offset > ef->size)
		return 0;
	if (n > ef->size - ph->p_offset)
		n = ef->size - ph->p_offset;
	return n;
}

/*
 * The PT_LOAD whose file-backed part covers vaddr; *avail is how many
 * file-backed bytes it has from vaddr on.
 */
static const GElf_Phdr *load_covering(const struct elf_file *ef,
				      uint64_t vaddr, uint64_t *avail)
{
	const GElf_Phdr *ph;
	uint64_t n;
	size_t i;

	for (i = 0; i < ef->phnum; i++) {
		ph = &ef->phdrs[i];
		if (ph->p_type != PT_LOAD || vaddr < ph->p_vaddr)
			continue;
		n = load_file_bytes(ef, ph);
		if (vaddr - ph->p_vaddr >= n)
			continue;
		*avail = n - (vaddr - ph->p_vaddr);
		return ph;
	}
	return NULL;
}

int elf_file_vaddr_to_offset(const struct elf_file *ef, uint64_t vaddr,
			     uint64_t *offset)
{
	const GElf_Phdr *ph;
	uint64_t avail;

	if (!offset)
		return -EINVAL;
	ph = load_covering(ef, vaddr, &avail);
	if (!ph)
		return -ENOENT;
	*offset = ph->p_offset + (vaddr - ph->p_vaddr);
	return 0;
}

int elf_file_read_vaddr(const struct elf_file *ef, uint64_t vaddr, void *buf,
			size_t len)
{
	const GElf_Phdr *ph;
	uint64_t avail;

	if (!buf && len)
		return -EINVAL;
	ph = load_covering(ef, vaddr, &avail);
	if (!ph)
		return -ENOENT;
	if (len > avail)
		return -ERANGE;
	return pread_full(ef->fd, buf, len, ph->p_offset + (vaddr - ph->p_vaddr));
}

/* ---- USDT probes ------------------------------------------------------ */

/* The desc of an NT_STAPSDT note: three addresses, then three strings. */
#define STAPSDT_ADDRS		(3 * sizeof(uint64_t))

/* The file offset of vaddr if a PT_LOAD with all of flags covers it. */
static int offset_in_load(const struct elf_file *ef, uint64_t vaddr,
			  uint32_t flags, uint64_t *offset)
{
	const GElf_Phdr *ph;
	uint64_t avail;

	ph = load_covering(ef, vaddr, &avail);
	if (!ph || (ph->p_flags & flags) != flags)
		return -ENOENT;
	*offset = ph->p_offset + (vaddr - ph->p_vaddr);
	return 0;
}

/*
 * Does this stapsdt desc name provider:name?  Both strings must end
 * inside the desc; the argument string after them is not needed.
 */
static bool usdt_named(const struct note *nt, const char *provider,
		       const char *name)
{
	const char *s = (const char *)nt->desc + STAPSDT_ADDRS;
	size_t left = nt->descsz - STAPSDT_ADDRS, plen, nlen;

	plen = strnlen(s, left);
	if (plen == left || strcmp(s, provider))
		return false;
	s += plen + 1;
	left -= plen + 1;
	nlen = strnlen(s, left);
	return nlen < left && strcmp(s, name) == 0;
}

/*
 * A site from one note.  delta moves link-time addresses to where the
 * file's .stapsdt.base says they are now (non-zero only for prelinked
 * files).  The probe must be code; a semaphore must be writable data, or
 * the kernel could not count its users there.
 */
static int usdt_site(const struct elf_file *ef, const struct note *nt,
		     uint64_t delta, struct elf_usdt_site *site)
{
	uint64_t addr[3];	/* pc, link-time .stapsdt.base, semaphore */

	memcpy(addr, nt->desc, sizeof(addr));
	if (offset_in_load(ef, addr[0] + delta, PF_X, &site->offset))
		return -ENOENT;
	site->ref_ctr_offset = 0;
	if (addr[2] && offset_in_load(ef, addr[2] + delta, PF_W,
				      &site->ref_ctr_offset))
		return -ENOENT;
	return 0;
}

static uint64_t stapsdt_delta(const struct elf_file *ef, const struct note *nt)
{
	GElf_Shdr base;
	uint64_t link_base;

	memcpy(&link_base, nt->desc + sizeof(uint64_t), sizeof(link_base));
	if (!link_base || section_named(ef, ".stapsdt.base", &base))
		return 0;
	return base.sh_addr - link_base;
}

static int collect_usdt(const struct elf_file *ef, const unsigned char *p,
			size_t len, size_t align, const char *provider,
			const char *name, struct elf_usdt_site *sites,
			size_t max, size_t *n)
{
	struct elf_usdt_site site;
	struct note nt;
	size_t pos = 0;

	while (next_note(p, len, align, &pos, &nt)) {
		if (!note_is(&nt, NT_STAPSDT, "stapsdt") ||
		    nt.descsz < STAPSDT_ADDRS + 2 ||
		    !usdt_named(&nt, provider, name) ||
		    usdt_site(ef, &nt, stapsdt_delta(ef, &nt), &site))
			continue;
		if (*n == max)
			return -ENOSPC;
		sites[(*n)++] = site;
	}
	return *n ? 0 : -ENOENT;
}

int elf_file_usdt_sites(const struct elf_file *ef, const char *provider,
			const char *name, struct elf_usdt_site *sites,
			size_t max, size_t *n)
{
	unsigned char *notes;
	GElf_Shdr sh;
	int err;

	if (!provider || !name || !n || (max && !sites))
		return -EINVAL;
	*n = 0;
	if (section_named(ef, ".note.stapsdt", &sh) || sh.sh_type != SHT_NOTE ||
	    (sh.sh_flags & SHF_COMPRESSED))
		return -ENOENT;
	err = read_notes(ef, sh.sh_offset, sh.sh_size, &notes);
	if (err)
		return err;
	err = collect_usdt(ef, notes, sh.sh_size, sh.sh_addralign == 8 ? 8 : 4,
			   provider, name, sites, max, n);
	free(notes);
	return err;
}

/*
 * Page size rather than p_align: the kernel maps each segment at
 * ELF_PAGESTART(p_vaddr) from file offset p_offset - ELF_PAGEOFFSET(p_vaddr),
 * which is exactly what /proc/PID/maps then shows, whatever p_align says.
 */
int elf_file_first_load(const struct elf_file *ef, uint64_t *vaddr,
			uint64_t *offset)
{
	const GElf_Phdr *first = NULL;
	long page = sysconf(_SC_PAGESIZE);
	uint64_t delta;
	size_t i;

	if (!vaddr || !offset)
		return -EINVAL;
	if (page <= 0)
		page = 4096;
	for (i = 0; i < ef->phnum; i++) {
		if (ef->phdrs[i].p_type != PT_LOAD)
			continue;
		if (!first || ef->phdrs[i].p_vaddr < first->p_vaddr)
			first = &ef->phdrs[i];
	}
	if (!first)
		return -ENOENT;
	delta = first->p_vaddr & ((uint64_t)page - 1);
	/* p_offset and p_vaddr must agree modulo the page size (gABI). */
	if (first->p_offset < delta ||
	    (first->p_offset & ((uint64_t)page - 1)) != delta)
		return -ENOEXEC;
	*vaddr = first->p_vaddr - delta;
	*offset = first->p_offset - delta;
	return 0;
}

/* ---- separate debug files -------------------------------------------- */

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

/* 0 if the file at path is an ELF file with exactly this build id. */
static int check_debug_file(const char *path, const unsigned char *build_id,
			    size_t len)
{
	unsigned char id[ELF_BUILD_ID_MAX];
	struct elf_file *ef;
	size_t idlen = 0;
	int err;

	err = elf_file_open(path, &ef);
	if (err)
		return err;
	err = elf_file_build_id(ef, id, sizeof(id), &idlen);
	elf_file_close(ef);
	if (err == -ENOSPC)
		return -ENOENT;
	if (err)
		return err;
	if (idlen != len || memcmp(id, build_id, len) != 0)
		return -ENOENT;
	return 0;
}

int elf_debuginfo_path(const char *debug_root, const unsigned char *build_id,
		       size_t len, char *path, size_t pathsz)
{
	char hex[2 * ELF_BUILD_ID_MAX + 1];
	char candidate[PATH_MAX];
	int n, err;

	/* One byte names the directory and at least one more the file. */
	if (!build_id || len < 2 || len > ELF_BUILD_ID_MAX || !path)
		return -EINVAL;
	if (!debug_root)
		debug_root = DEFAULT_DEBUG_ROOT;

	hex_encode(build_id, len, hex);
	n = snprintf(candidate, sizeof(candidate), "%s/.build-id/%.2s/%s.debug",
		     debug_root, hex, hex + 2);
	if (n < 0 || (size_t)n >= sizeof(candidate) || (size_t)n >= pathsz)
		return -ENAMETOOLONG;

	err = check_debug_file(candidate, build_id, len);
	if (err)
		return err;
	memcpy(path, candidate, (size_t)n + 1);
	return 0;
}
