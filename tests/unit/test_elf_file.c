/*
 * test_elf_file.c - unit tests for src/elf_file.c.
 *
 * Owns the test fixtures for the ELF reader: a small program compiled at
 * test time (known build id, clone-named and absolute symbols, a constant
 * in .rodata, and a main() that prints its own addresses and code bytes as
 * an independent oracle), one with hand-written USDT notes, hostile
 * variants of them and of /bin/true, and the
 * Debian python3.11 binary with its separate debug file plus a pyenv
 * libpython when those are installed.
 *
 * Expected values never come from the code under test: they come from the
 * running fixture, from a deliberately naive raw parser below (fine for
 * files we trust), or from file names that encode the build id.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#include "elf_file.h"

#define PY_EXEC		"/usr/bin/python3.11"
#define PY_DEBUG_ROOT	"/usr/lib/debug"
#define PY_DEBUG_FILE	PY_DEBUG_ROOT \
	"/.build-id/c5/61f3aa7232f2bd6ac6d56bd475f1c154a00486.debug"
#define PY_BUILD_ID	"c561f3aa7232f2bd6ac6d56bd475f1c154a00486"
#define PYENV_LIBPYTHON	"/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0"

/* CPython 3.11 (non-debug build) PyTypeObject.tp_methods, PyMethodDef size. */
#define PY311_TP_METHODS_OFF	232
#define PY_METHODDEF_SIZE	32

#define FIXTURE_ID	"0123456789abcdef0123456789abcdef01234567"
#define FIXTURE_PIE_ID	"fedcba98765432100123456789abcdef00112233"
#define FIXTURE_MAGIC	0x1122334455667788ULL

static const char fixture_src[] =
	"#include <stdio.h>\n"
	"#include <string.h>\n"
	"const unsigned long long aiocop_magic __attribute__((used)) =\n"
	"	0x1122334455667788ULL;\n"
	"__attribute__((noinline, used)) int cold_part(int x)\n"
	"	__asm__(\"aiocop_clone.cold\");\n"
	"int cold_part(int x) { return x - 1; }\n"
	"__attribute__((noinline, used)) int clone_fn(int x)\n"
	"	__asm__(\"aiocop_clone.lto_priv.0\");\n"
	"int clone_fn(int x) { return x + 7; }\n"
	"__attribute__((noinline, used)) int dup_isra(int x)\n"
	"	__asm__(\"aiocop_dup.isra.0\");\n"
	"int dup_isra(int x) { return x + 2; }\n"
	"__attribute__((noinline, used)) int aiocop_dup(int x) { return x * 5; }\n"
	"__attribute__((noinline, used)) int abs_clone(int x)\n"
	"	__asm__(\"aiocop_abs.constprop.0\");\n"
	"int abs_clone(int x) { return x ^ 3; }\n"
	"__asm__(\".globl aiocop_abs\\n.set aiocop_abs, 0\\n\");\n"
	"__attribute__((noinline, used)) int aiocop_fn(int x) { return x * 3 + 1; }\n"
	"int main(void)\n"
	"{\n"
	"	unsigned char code[16];\n"
	"	int i;\n"
	"	memcpy(code, (const void *)aiocop_fn, sizeof(code));\n"
	"	printf(\"%lx %lx %lx %lx %lx \", (unsigned long)aiocop_fn,\n"
	"	       (unsigned long)&aiocop_magic, (unsigned long)clone_fn,\n"
	"	       (unsigned long)aiocop_dup, (unsigned long)abs_clone);\n"
	"	for (i = 0; i < 16; i++)\n"
	"		printf(\"%02x\", code[i]);\n"
	"	printf(\"\\n\");\n"
	"	return 0;\n"
	"}\n";

/*
 * USDT notes written by hand, in the layout of SystemTap's <sys/sdt.h>
 * (not installed here): one probe with a semaphore, one probe name at two
 * sites, one as prelink leaves it (addresses 0x1000 below where
 * .stapsdt.base now is), and sites that must be refused: a semaphore in
 * code, a probe in data.
 */
static const char usdt_src[] =
	"__attribute__((section(\".probes\"), used)) unsigned short aiocop_sema;\n"
	"__asm__(\n"
	"\".macro aiocop_note pc, base, sema, name\\n\"\n"
	"\".pushsection .note.stapsdt,\\\"\\\",\\\"note\\\"\\n\"\n"
	"\".balign 4\\n.4byte 8, 2f-1f, 3\\n.asciz \\\"stapsdt\\\"\\n\"\n"
	"\"1: .8byte \\\\pc, \\\\base, \\\\sema\\n\"\n"
	"\".asciz \\\"aiocop\\\"\\n.asciz \\\"\\\\name\\\"\\n.asciz \\\"\\\"\\n\"\n"
	"\"2: .balign 4\\n.popsection\\n.endm\\n\"\n"
	"\".pushsection .text\\n\"\n"
	"\".globl aiocop_probe_a, aiocop_probe_b, aiocop_probe_c\\n\"\n"
	"\"aiocop_probe_a: nop\\naiocop_probe_b: nop\\naiocop_probe_c: nop\\nret\\n\"\n"
	"\".popsection\\n\"\n"
	"\".pushsection .stapsdt.base,\\\"a\\\",\\\"progbits\\\"\\n\"\n"
	"\"aiocop_sdt_base: .space 1\\n.popsection\\n\"\n"
	"\"aiocop_note aiocop_probe_a, aiocop_sdt_base, aiocop_sema, with_sema\\n\"\n"
	"\"aiocop_note aiocop_probe_b, aiocop_sdt_base, 0, twice\\n\"\n"
	"\"aiocop_note aiocop_probe_c, aiocop_sdt_base, 0, twice\\n\"\n"
	"\"aiocop_note aiocop_probe_a-0x1000, aiocop_sdt_base-0x1000, 0, prelinked\\n\"\n"
	"\"aiocop_note aiocop_probe_a, aiocop_sdt_base, aiocop_probe_b, code_sema\\n\"\n"
	"\"aiocop_note aiocop_sema, aiocop_sdt_base, 0, data_pc\\n\"\n"
	"\"aiocop_note aiocop_probe_a, 0, 0, no_base\\n\");\n"
	"int main(void) { return aiocop_sema; }\n";

/* What the ET_EXEC fixture reported about itself at run time. */
struct fixture_oracle {
	uint64_t fn, magic, clone, dup, abs_clone;
	unsigned char code[16];
};

static char tmpdir[64];
static char fix_exec[128];
static char fix_pie[128];
static char fix_usdt[128];
static bool have_fixture;
static bool have_usdt_fixture;
static struct fixture_oracle oracle;

/* ---- small file helpers ----------------------------------------------- */

static void tmp_path(char *out, size_t outsz, const char *name)
{
	snprintf(out, outsz, "%s/%s", tmpdir, name);
}

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = len == 0 || fwrite(buf, 1, len, f) == len;
	if (fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static unsigned char *read_whole(const char *path, size_t *len)
{
	unsigned char *buf;
	struct stat st;
	FILE *f;

	f = fopen(path, "rb");
	if (!f)
		return NULL;
	if (fstat(fileno(f), &st) < 0 || st.st_size <= 0) {
		fclose(f);
		return NULL;
	}
	buf = malloc((size_t)st.st_size);
	if (buf && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)st.st_size;
	return buf;
}

static bool exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static void hex_of(const unsigned char *b, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

static size_t unhex(const char *hex, unsigned char *out)
{
	size_t i, n = strlen(hex) / 2;

	for (i = 0; i < n; i++)
		sscanf(hex + 2 * i, "%2hhx", &out[i]);
	return n;
}

/* ---- a naive raw ELF parser, for files we trust, as the oracle -------- */

struct raw {
	unsigned char *buf;
	size_t len;
};

static bool raw_load(struct raw *r, const char *path)
{
	r->buf = read_whole(path, &r->len);
	return r->buf && r->len >= sizeof(Elf64_Ehdr);
}

static Elf64_Ehdr *raw_ehdr(struct raw *r)
{
	return (Elf64_Ehdr *)r->buf;
}

static Elf64_Shdr *raw_shdr(struct raw *r, size_t i)
{
	Elf64_Ehdr *eh = raw_ehdr(r);

	assert_true(i < eh->e_shnum);
	assert_true(eh->e_shoff + (i + 1) * sizeof(Elf64_Shdr) <= r->len);
	return (Elf64_Shdr *)(r->buf + eh->e_shoff + i * sizeof(Elf64_Shdr));
}

static Elf64_Phdr *raw_phdr(struct raw *r, size_t i)
{
	Elf64_Ehdr *eh = raw_ehdr(r);

	assert_true(i < eh->e_phnum);
	return (Elf64_Phdr *)(r->buf + eh->e_phoff + i * sizeof(Elf64_Phdr));
}

static int raw_section(struct raw *r, const char *name)
{
	Elf64_Shdr *names = raw_shdr(r, raw_ehdr(r)->e_shstrndx);
	size_t i;

	for (i = 1; i < raw_ehdr(r)->e_shnum; i++) {
		const char *s = (const char *)r->buf + names->sh_offset +
				raw_shdr(r, i)->sh_name;
		if (strcmp(s, name) == 0)
			return (int)i;
	}
	return -1;
}

static const char *raw_symname(struct raw *r, Elf64_Shdr *tab, Elf64_Sym *sym)
{
	Elf64_Shdr *strs = raw_shdr(r, tab->sh_link);

	return (const char *)r->buf + strs->sh_offset + sym->st_name;
}

/* Symbol by exact name in the first table of the given type. */
static Elf64_Sym *raw_symbol(struct raw *r, uint32_t type, const char *name,
			     size_t *index)
{
	size_t i, j;

	for (i = 1; i < raw_ehdr(r)->e_shnum; i++) {
		Elf64_Shdr *tab = raw_shdr(r, i);

		if (tab->sh_type != type || tab->sh_type == SHT_NOBITS)
			continue;
		for (j = 1; j < tab->sh_size / sizeof(Elf64_Sym); j++) {
			Elf64_Sym *sym = (Elf64_Sym *)(r->buf + tab->sh_offset) + j;

			if (strcmp(raw_symname(r, tab, sym), name) == 0) {
				if (index)
					*index = j;
				return sym;
			}
		}
		return NULL;
	}
	return NULL;
}

/* Build id as hex from the PT_NOTE segments, the way the gABI lays it out. */
static bool raw_build_id(struct raw *r, char *hex)
{
	size_t i;

	for (i = 0; i < raw_ehdr(r)->e_phnum; i++) {
		Elf64_Phdr *ph = raw_phdr(r, i);
		size_t align = ph->p_align == 8 ? 8 : 4;
		size_t pos = 0;

		if (ph->p_type != PT_NOTE)
			continue;
		while (pos + sizeof(Elf64_Nhdr) <= ph->p_filesz) {
			Elf64_Nhdr *nh = (Elf64_Nhdr *)(r->buf + ph->p_offset + pos);
			size_t name = pos + sizeof(*nh);
			size_t desc = (name + nh->n_namesz + align - 1) & ~(align - 1);

			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    memcmp(r->buf + ph->p_offset + name, "GNU", 4) == 0) {
				hex_of(r->buf + ph->p_offset + desc, nh->n_descsz, hex);
				return true;
			}
			pos = (desc + nh->n_descsz + align - 1) & ~(align - 1);
		}
	}
	return false;
}

/* File offset of vaddr through the PT_LOAD headers, the plain way. */
static uint64_t raw_file_offset(struct raw *r, uint64_t vaddr)
{
	size_t i;

	for (i = 0; i < raw_ehdr(r)->e_phnum; i++) {
		Elf64_Phdr *ph = raw_phdr(r, i);

		if (ph->p_type == PT_LOAD && vaddr >= ph->p_vaddr &&
		    vaddr - ph->p_vaddr < ph->p_filesz)
			return ph->p_offset + (vaddr - ph->p_vaddr);
	}
	fail_msg("0x%llx is in no PT_LOAD", (unsigned long long)vaddr);
	return 0;
}

static uint64_t raw_symbol_offset(struct raw *r, const char *name)
{
	Elf64_Sym *sym = raw_symbol(r, SHT_SYMTAB, name, NULL);

	assert_non_null(sym);
	return raw_file_offset(r, sym->st_value);
}

/* ---- calling everything on a handle that may describe garbage -------- */

static void check_offset(const struct elf_file *ef, uint64_t vaddr,
			 uint64_t fsize)
{
	unsigned char buf[64];
	uint64_t off;

	if (elf_file_vaddr_to_offset(ef, vaddr, &off) == 0)
		assert_true(off < fsize);
	elf_file_read_vaddr(ef, vaddr, buf, sizeof(buf));
	elf_file_read_vaddr(ef, vaddr, buf, 1);
}

static void exercise_usdt(const struct elf_file *ef, uint64_t fsize)
{
	struct elf_usdt_site sites[4];
	size_t i, n;

	if (elf_file_usdt_sites(ef, "aiocop", "twice", sites, 4, &n) == 0 ||
	    n > 0)
		assert_true(n <= 4);
	for (i = 0; i < n; i++) {
		assert_true(sites[i].offset < fsize);
		assert_true(sites[i].ref_ctr_offset < fsize);
	}
	elf_file_usdt_sites(ef, "python", "gc__start", sites, 4, &n);
	elf_file_usdt_sites(ef, "", "", NULL, 0, &n);
}

static void exercise_all(const struct elf_file *ef, uint64_t fsize)
{
	static const char *const names[] = {
		"main", "aiocop_fn", "aiocop_clone", "_start", "puts", "x",
	};
	unsigned char id[ELF_BUILD_ID_MAX];
	uint64_t a, b;
	size_t i, len;

	elf_file_type(ef);
	if (elf_file_build_id(ef, id, sizeof(id), &len) == 0)
		assert_true(len > 0 && len <= sizeof(id));
	elf_file_build_id(ef, id, 1, &len);
	elf_file_has_symtab(ef);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (elf_file_find_symbol(ef, names[i], false, &a, &b) == 0)
			check_offset(ef, a, fsize);
		if (elf_file_find_symbol(ef, names[i], true, &a, &b) == 0)
			check_offset(ef, a, fsize);
	}
	if (elf_file_find_section(ef, ".rodata", &a, &b) == 0)
		check_offset(ef, a, fsize);
	elf_file_find_section(ef, ".text", &a, &b);
	elf_file_find_section(ef, "", &a, &b);
	if (elf_file_first_load(ef, &a, &b) == 0)
		check_offset(ef, a, fsize);
	exercise_usdt(ef, fsize);
	check_offset(ef, 0, fsize);
	check_offset(ef, 0x400000, fsize);
	check_offset(ef, UINT64_MAX, fsize);
	check_offset(ef, UINT64_MAX - 8, fsize);
}

/* Open a possibly hostile file; if it opens, everything must still be safe. */
static int open_and_exercise(const char *path)
{
	struct elf_file *ef;
	struct stat st;
	int err;

	err = elf_file_open(path, &ef);
	if (err) {
		assert_true(err < 0);
		assert_null(ef);
		return err;
	}
	assert_int_equal(stat(path, &st), 0);
	exercise_all(ef, (uint64_t)st.st_size);
	elf_file_close(ef);
	return 0;
}

static int write_and_open(const void *buf, size_t len)
{
	char path[128];

	tmp_path(path, sizeof(path), "hostile.elf");
	assert_int_equal(write_file(path, buf, len), 0);
	return open_and_exercise(path);
}

static int open_path(const char *path, struct elf_file **ef)
{
	int err = elf_file_open(path, ef);

	if (err)
		print_message("elf_file_open(%s) = %d\n", path, err);
	return err;
}

/* ---- fixture build ---------------------------------------------------- */

static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static bool read_oracle(void)
{
	char line[512], code[64];
	unsigned long v[5];
	FILE *p;
	bool ok;

	p = popen(fix_exec, "r");
	if (!p)
		return false;
	ok = fgets(line, sizeof(line), p) != NULL;
	if (pclose(p) != 0)
		ok = false;
	if (!ok || sscanf(line, "%lx %lx %lx %lx %lx %32s", &v[0], &v[1], &v[2],
			  &v[3], &v[4], code) != 6 || strlen(code) != 32)
		return false;
	oracle.fn = v[0];
	oracle.magic = v[1];
	oracle.clone = v[2];
	oracle.dup = v[3];
	oracle.abs_clone = v[4];
	unhex(code, oracle.code);
	return true;
}

static int group_setup(void **state)
{
	const char *cc = getenv("CC") ? getenv("CC") : "cc";
	char src[128];

	strcpy(tmpdir, "/tmp/aiocop-elf-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	tmp_path(src, sizeof(src), "aiocop_fixture.c");
	tmp_path(fix_exec, sizeof(fix_exec), "fixture_exec");
	tmp_path(fix_pie, sizeof(fix_pie), "fixture_pie");
	tmp_path(fix_usdt, sizeof(fix_usdt), "fixture_usdt");
	if (write_file(src, fixture_src, sizeof(fixture_src) - 1))
		return -1;
	tmp_path(src, sizeof(src), "aiocop_usdt.c");
	if (write_file(src, usdt_src, sizeof(usdt_src) - 1))
		return -1;
	have_usdt_fixture = run("cd %s && %s -O1 -no-pie -fno-pie -o %s aiocop_usdt.c",
				tmpdir, cc, fix_usdt) == 0;
	/* -O1 keeps the asm-named clones as real, separate functions. */
	have_fixture =
		run("cd %s && %s -O1 -no-pie -fno-pie -o %s aiocop_fixture.c "
		    "-Wl,--build-id=0x%s", tmpdir, cc, fix_exec, FIXTURE_ID) == 0 &&
		run("cd %s && %s -O1 -fPIE -pie -o %s aiocop_fixture.c "
		    "-Wl,--build-id=0x%s", tmpdir, cc, fix_pie, FIXTURE_PIE_ID) == 0 &&
		read_oracle();
	return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
		    struct FTW *ftw)
{
	return remove(path);
}

static int group_teardown(void **state)
{
	if (tmpdir[0])
		nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

#define NEED_FIXTURE() do {						\
		if (!have_fixture) {					\
			print_message("fixture not built, see test_fixture_built\n"); \
			skip();						\
		}							\
	} while (0)

#define NEED_FILE(path) do {						\
		if (!exists(path)) {					\
			print_message("SKIP: %s not installed\n", path); \
			skip();						\
		}							\
	} while (0)

/* ---- non-ELF and malformed headers ------------------------------------ */

static void test_fixture_built(void **state)
{
	/* Everything below leans on it; fail loudly rather than skip. */
	assert_true(have_fixture);
}

static void test_open_missing(void **state)
{
	struct elf_file *ef = (void *)1;
	char path[128];

	tmp_path(path, sizeof(path), "does-not-exist");
	assert_int_equal(elf_file_open(path, &ef), -ENOENT);
	assert_null(ef);
}

static void test_open_empty(void **state)
{
	char path[128];

	tmp_path(path, sizeof(path), "empty");
	assert_int_equal(write_file(path, "", 0), 0);
	assert_int_equal(open_and_exercise(path), -ENOEXEC);
}

static void test_open_not_elf(void **state)
{
	static const char text[] = "#!/bin/sh\necho this is not an ELF file\n";
	unsigned char junk[4096];

	assert_int_equal(write_and_open(text, sizeof(text)), -ENOEXEC);
	/* Right magic, then nothing. */
	assert_int_equal(write_and_open(ELFMAG, SELFMAG), -ENOEXEC);
	memset(junk, 0xff, sizeof(junk));
	memcpy(junk, ELFMAG, SELFMAG);
	assert_int_equal(write_and_open(junk, sizeof(junk)), -ENOEXEC);
}

static void test_open_not_regular(void **state)
{
	char fifo[128];

	assert_int_equal(open_and_exercise("/dev/null"), -ENOEXEC);
	assert_int_equal(open_and_exercise(tmpdir), -ENOEXEC);
	/* Would block forever in open() without O_NONBLOCK. */
	tmp_path(fifo, sizeof(fifo), "fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(open_and_exercise(fifo), -ENOEXEC);
	unlink(fifo);
}

static void test_open_32bit(void **state)
{
	unsigned char file[4096] = { 0 };
	Elf32_Ehdr *eh = (Elf32_Ehdr *)file;

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS32;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_386;
	eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof(*eh);
	assert_int_equal(write_and_open(file, sizeof(file)), -ENOEXEC);
}

static void test_open_foreign_byte_order(void **state)
{
	struct raw r;

	NEED_FIXTURE();
	assert_true(raw_load(&r, fix_exec));
	raw_ehdr(&r)->e_ident[EI_DATA] = ELFDATA2MSB;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	free(r.buf);
}

static void test_truncated(void **state)
{
	const char *src = exists("/bin/true") ? "/bin/true" : fix_exec;
	size_t cuts[] = { 16, 64, 200, 1000, 0, 0 };
	struct raw r;
	size_t i;

	assert_true(raw_load(&r, src));
	cuts[4] = r.len / 2;
	cuts[5] = r.len - 1;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		int err = write_and_open(r.buf, cuts[i]);

		if (err != -ENOEXEC)
			print_message("%s cut at %zu: %d\n", src, cuts[i], err);
		assert_int_equal(err, -ENOEXEC);
	}
	free(r.buf);
}

/*
 * A truncated file whose section table is dropped opens fine (the program
 * headers are intact), but segments now reach past EOF: nothing beyond the
 * cut may be reported as file-backed.
 */
static void test_truncated_segments(void **state)
{
	struct elf_file *ef;
	unsigned char id[ELF_BUILD_ID_MAX], byte;
	uint64_t off, cut;
	struct raw r;
	char path[128];
	size_t len;

	NEED_FIXTURE();
	assert_true(raw_load(&r, fix_exec));
	/* Cut just below the text, so the build-id note survives. */
	assert_int_equal(elf_file_open(fix_exec, &ef), 0);
	assert_int_equal(elf_file_vaddr_to_offset(ef, oracle.fn, &off), 0);
	elf_file_close(ef);
	cut = off;
	raw_ehdr(&r)->e_shoff = 0;
	raw_ehdr(&r)->e_shnum = 0;
	raw_ehdr(&r)->e_shstrndx = 0;
	tmp_path(path, sizeof(path), "cut.elf");
	assert_int_equal(write_file(path, r.buf, cut), 0);

	assert_int_equal(elf_file_open(path, &ef), 0);
	assert_int_equal(elf_file_vaddr_to_offset(ef, oracle.fn, &off), -ENOENT);
	assert_int_equal(elf_file_read_vaddr(ef, oracle.fn, &byte, 1), -ENOENT);
	assert_int_equal(elf_file_read_vaddr(ef, oracle.magic, &byte, 1), -ENOENT);
	assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len), 0);
	assert_int_equal(len, 20);
	assert_int_equal(elf_file_has_symtab(ef), 0);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_fn", false, &off, NULL),
			 -ENOENT);
	exercise_all(ef, cut);
	elf_file_close(ef);
	free(r.buf);
}

/* ---- the fixture: values checked against the running program ---------- */

static void test_fixture_exec(void **state)
{
	unsigned char code[16];
	uint64_t vaddr, size, off, magic = 0;
	struct elf_file *ef;
	struct raw r;

	NEED_FIXTURE();
	assert_int_equal(open_path(fix_exec, &ef), 0);
	assert_int_equal(elf_file_type(ef), ET_EXEC);
	assert_int_equal(elf_file_has_symtab(ef), 1);

	/* Non-PIE: the run-time address is the link-time vaddr. */
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_fn", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, oracle.fn);
	assert_true(size > 0);

	/* The file bytes at the translated offset are the code that ran. */
	assert_true(raw_load(&r, fix_exec));
	assert_int_equal(elf_file_vaddr_to_offset(ef, vaddr, &off), 0);
	assert_true(off + sizeof(code) <= r.len);
	assert_memory_equal(r.buf + off, oracle.code, sizeof(oracle.code));
	assert_int_equal(elf_file_read_vaddr(ef, vaddr, code, sizeof(code)), 0);
	assert_memory_equal(code, oracle.code, sizeof(code));

	assert_int_equal(elf_file_find_symbol(ef, "aiocop_magic", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, oracle.magic);
	assert_int_equal(size, sizeof(magic));
	assert_int_equal(elf_file_read_vaddr(ef, vaddr, &magic, sizeof(magic)), 0);
	assert_int_equal(magic, FIXTURE_MAGIC);
	assert_int_equal(elf_file_read_vaddr(ef, vaddr, &magic, SIZE_MAX), -ERANGE);

	assert_int_equal(elf_file_find_symbol(ef, "aiocop_nonexistent", true,
					      &vaddr, &size), -ENOENT);
	assert_int_equal(elf_file_find_symbol(ef, "", true, &vaddr, &size),
			 -EINVAL);
	elf_file_close(ef);
	free(r.buf);
}

static void test_fixture_build_id(void **state)
{
	unsigned char id[ELF_BUILD_ID_MAX];
	char hex[2 * ELF_BUILD_ID_MAX + 1], raw_hex[2 * ELF_BUILD_ID_MAX + 1];
	struct elf_file *ef;
	struct raw r;
	size_t len;

	NEED_FIXTURE();
	assert_true(raw_load(&r, fix_exec));
	assert_true(raw_build_id(&r, raw_hex));
	assert_string_equal(raw_hex, FIXTURE_ID);

	assert_int_equal(open_path(fix_exec, &ef), 0);
	assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len), 0);
	hex_of(id, len, hex);
	assert_string_equal(hex, FIXTURE_ID);
	assert_int_equal(elf_file_build_id(ef, id, 4, &len), -ENOSPC);
	assert_int_equal(len, 20);
	elf_file_close(ef);

	assert_int_equal(open_path(fix_pie, &ef), 0);
	assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len), 0);
	hex_of(id, len, hex);
	assert_string_equal(hex, FIXTURE_PIE_ID);
	elf_file_close(ef);
	free(r.buf);
}

static void test_symbol_suffix(void **state)
{
	uint64_t vaddr, size;
	struct elf_file *ef;
	Elf64_Sym *cold;
	struct raw r;

	NEED_FIXTURE();
	/* The trap must really be there for the test to mean anything. */
	assert_true(raw_load(&r, fix_exec));
	cold = raw_symbol(&r, SHT_SYMTAB, "aiocop_clone.cold", NULL);
	assert_non_null(cold);
	assert_true(cold->st_value != 0 && cold->st_value != oracle.clone);

	assert_int_equal(open_path(fix_exec, &ef), 0);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_clone", false, &vaddr,
					      &size), -ENOENT);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_clone", true, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, oracle.clone);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_clone.lto_priv.0",
					      false, &vaddr, NULL), 0);
	assert_int_equal(vaddr, oracle.clone);
	/* A prefix that is not followed by '.' is not a clone. */
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_clon", true, &vaddr,
					      &size), -ENOENT);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_f", true, &vaddr,
					      &size), -ENOENT);
	elf_file_close(ef);
	free(r.buf);
}

static void test_symbol_preference(void **state)
{
	uint64_t vaddr, size;
	struct elf_file *ef;
	Elf64_Sym *sym;
	struct raw r;
	size_t i;

	NEED_FIXTURE();
	assert_true(raw_load(&r, fix_exec));
	assert_non_null(raw_symbol(&r, SHT_SYMTAB, "aiocop_dup.isra.0", NULL));
	sym = raw_symbol(&r, SHT_SYMTAB, "aiocop_abs", NULL);
	assert_non_null(sym);
	assert_int_equal(sym->st_shndx, SHN_ABS);
	assert_int_equal(sym->st_value, 0);
	sym = raw_symbol(&r, SHT_SYMTAB, "aiocop_fixture.c", NULL);
	assert_non_null(sym);
	assert_int_equal(ELF64_ST_TYPE(sym->st_info), STT_FILE);

	assert_int_equal(open_path(fix_exec, &ef), 0);
	/* The exact name beats its clone, whatever the table order. */
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_dup", true, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, oracle.dup);
	/* A non-zero clone beats an exact match with value 0... */
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_abs", true, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, oracle.abs_clone);
	/* ...which is still returned when nothing better may match. */
	vaddr = 1;
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_abs", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, 0);
	/* STT_FILE "aiocop_fixture.c" is not a symbol for "aiocop_fixture". */
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_fixture", true, &vaddr,
					      &size), -ENOENT);

	/* Imports (undefined in .dynsym) are never returned. */
	for (i = 1; i < raw_ehdr(&r)->e_shnum; i++) {
		Elf64_Shdr *dyn = raw_shdr(&r, i);
		Elf64_Sym *syms = (Elf64_Sym *)(r.buf + dyn->sh_offset);
		size_t j, checked = 0;

		if (dyn->sh_type != SHT_DYNSYM)
			continue;
		for (j = 1; j < dyn->sh_size / sizeof(Elf64_Sym); j++) {
			const char *name = raw_symname(&r, dyn, &syms[j]);

			if (syms[j].st_shndx != SHN_UNDEF || !name[0] ||
			    raw_symbol(&r, SHT_SYMTAB, name, NULL))
				continue;
			assert_int_equal(elf_file_find_symbol(ef, name, false,
							      &vaddr, &size),
					 -ENOENT);
			checked++;
		}
		assert_true(checked > 0);
	}
	elf_file_close(ef);
	free(r.buf);
}

static void test_find_section(void **state)
{
	uint64_t vaddr, size;
	struct elf_file *ef;
	Elf64_Shdr *sh;
	struct raw r;
	int idx;

	NEED_FIXTURE();
	assert_true(raw_load(&r, fix_exec));
	idx = raw_section(&r, ".rodata");
	assert_true(idx > 0);
	sh = raw_shdr(&r, (size_t)idx);

	assert_int_equal(open_path(fix_exec, &ef), 0);
	assert_int_equal(elf_file_find_section(ef, ".rodata", &vaddr, &size), 0);
	assert_int_equal(vaddr, sh->sh_addr);
	assert_int_equal(size, sh->sh_size);
	assert_true(oracle.magic >= vaddr && oracle.magic < vaddr + size);
	assert_int_equal(elf_file_find_section(ef, ".rodat", &vaddr, &size),
			 -ENOENT);
	assert_int_equal(elf_file_find_section(ef, ".nonexistent", &vaddr, &size),
			 -ENOENT);
	elf_file_close(ef);
	free(r.buf);
}

static void test_first_load(void **state)
{
	uint64_t vaddr, off, lowest = UINT64_MAX, lowest_off = 0, magic;
	struct elf_file *ef;
	struct raw r;
	size_t i;

	NEED_FIXTURE();
	assert_true(raw_load(&r, fix_exec));
	for (i = 0; i < raw_ehdr(&r)->e_phnum; i++) {
		Elf64_Phdr *ph = raw_phdr(&r, i);

		if (ph->p_type == PT_LOAD && ph->p_vaddr < lowest) {
			lowest = ph->p_vaddr;
			lowest_off = ph->p_offset;
		}
	}
	assert_int_equal(open_path(fix_exec, &ef), 0);
	assert_int_equal(elf_file_first_load(ef, &vaddr, &off), 0);
	assert_int_equal(vaddr, lowest & ~0xfffULL);
	assert_int_equal(off, lowest_off & ~0xfffULL);
	assert_int_equal(vaddr, 0x400000);
	elf_file_close(ef);

	/* PIE: ET_DYN, linked at 0, and .rodata readable without relocation. */
	assert_int_equal(open_path(fix_pie, &ef), 0);
	assert_int_equal(elf_file_type(ef), ET_DYN);
	assert_int_equal(elf_file_first_load(ef, &vaddr, &off), 0);
	assert_int_equal(vaddr, 0);
	assert_int_equal(off, 0);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_magic", false, &vaddr,
					      NULL), 0);
	assert_int_equal(elf_file_read_vaddr(ef, vaddr, &magic, sizeof(magic)), 0);
	assert_int_equal(magic, FIXTURE_MAGIC);
	elf_file_close(ef);
	free(r.buf);
}

/* ---- hostile variants of the fixture ---------------------------------- */

static struct raw fixture_copy(void)
{
	struct raw r;

	assert_true(raw_load(&r, fix_exec));
	return r;
}

static void test_hostile_header_tables(void **state)
{
	struct raw r;
	Elf64_Ehdr *eh;

	NEED_FIXTURE();
	r = fixture_copy();
	eh = raw_ehdr(&r);

	eh->e_shoff = r.len + 4096;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	eh->e_shoff = UINT64_MAX - 63;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	/* Table ends one byte past EOF. */
	eh->e_shoff = r.len - (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr) + 1;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	free(r.buf);

	r = fixture_copy();
	eh = raw_ehdr(&r);
	eh->e_phoff = r.len - 8;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	eh->e_phoff = UINT64_MAX - 8;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	free(r.buf);

	r = fixture_copy();
	eh = raw_ehdr(&r);
	eh->e_shentsize = sizeof(Elf32_Shdr);
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	free(r.buf);

	/* Extended numbering pointing at absurd counts. */
	r = fixture_copy();
	eh = raw_ehdr(&r);
	eh->e_phnum = PN_XNUM;
	raw_shdr(&r, 0)->sh_info = UINT32_MAX;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	free(r.buf);

	r = fixture_copy();
	eh = raw_ehdr(&r);
	raw_shdr(&r, 0)->sh_size = UINT64_MAX / 2;
	eh->e_shnum = 0;
	assert_int_equal(write_and_open(r.buf, r.len), -ENOEXEC);
	free(r.buf);
}

static void test_hostile_section_offsets(void **state)
{
	uint64_t huge[] = { UINT64_MAX - 10, UINT64_MAX / 2, 0 };
	struct raw r;
	Elf64_Shdr *sh;
	int sym, str;
	size_t i;

	NEED_FIXTURE();
	for (i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		/* .symtab data past EOF. */
		r = fixture_copy();
		sym = raw_section(&r, ".symtab");
		assert_true(sym > 0);
		sh = raw_shdr(&r, (size_t)sym);
		sh->sh_offset = huge[i] ? huge[i] : r.len - 8;
		assert_int_equal(write_and_open(r.buf, r.len), 0);
		free(r.buf);

		/* .symtab size past EOF. */
		r = fixture_copy();
		sh = raw_shdr(&r, (size_t)raw_section(&r, ".symtab"));
		sh->sh_size = huge[i] ? huge[i] : r.len;
		assert_int_equal(write_and_open(r.buf, r.len), 0);
		free(r.buf);

		/* Its string table past EOF. */
		r = fixture_copy();
		str = raw_section(&r, ".strtab");
		sh = raw_shdr(&r, (size_t)str);
		sh->sh_offset = huge[i] ? huge[i] : r.len - 1;
		assert_int_equal(write_and_open(r.buf, r.len), 0);
		free(r.buf);

		/* Section names past EOF. */
		r = fixture_copy();
		sh = raw_shdr(&r, raw_ehdr(&r)->e_shstrndx);
		sh->sh_size = huge[i] ? huge[i] : r.len;
		assert_int_equal(write_and_open(r.buf, r.len), 0);
		free(r.buf);
	}
}

/* Open the mutated copy and return what a lookup of aiocop_fn gives. */
static int lookup_in(struct raw *r, const char *name, uint64_t *vaddr)
{
	struct elf_file *ef;
	char path[128];
	int err;

	tmp_path(path, sizeof(path), "lookup.elf");
	assert_int_equal(write_file(path, r->buf, r->len), 0);
	assert_int_equal(elf_file_open(path, &ef), 0);
	err = elf_file_find_symbol(ef, name, true, vaddr, NULL);
	exercise_all(ef, r->len);
	elf_file_close(ef);
	return err;
}

static void test_hostile_string_tables(void **state)
{
	uint64_t vaddr, size;
	struct elf_file *ef;
	struct raw r;
	Elf64_Shdr *sh;
	char path[128];
	int sym;

	NEED_FIXTURE();
	/* Section name table index out of range: names gone, symbols not. */
	r = fixture_copy();
	raw_ehdr(&r)->e_shstrndx = raw_ehdr(&r)->e_shnum + 5;
	tmp_path(path, sizeof(path), "shstrndx.elf");
	assert_int_equal(write_file(path, r.buf, r.len), 0);
	assert_int_equal(elf_file_open(path, &ef), 0);
	assert_int_equal(elf_file_find_section(ef, ".rodata", &vaddr, &size),
			 -ENOENT);
	assert_int_equal(elf_file_find_symbol(ef, "aiocop_fn", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, oracle.fn);
	elf_file_close(ef);
	free(r.buf);

	/* Symbol table linked to a missing or non-string section. */
	r = fixture_copy();
	sym = raw_section(&r, ".symtab");
	sh = raw_shdr(&r, (size_t)sym);
	sh->sh_link = 9999;
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), -ENOENT);
	sh->sh_link = (uint32_t)sym;
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), -ENOENT);
	sh->sh_link = 0;
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), -ENOENT);
	free(r.buf);
}

static void test_hostile_symbol_names(void **state)
{
	Elf64_Shdr *strs;
	Elf64_Sym *sym;
	uint64_t vaddr;
	struct raw r;
	size_t idx;

	NEED_FIXTURE();
	r = fixture_copy();
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), 0);
	sym = raw_symbol(&r, SHT_SYMTAB, "aiocop_fn", &idx);
	assert_non_null(sym);
	strs = raw_shdr(&r, raw_shdr(&r, (size_t)raw_section(&r, ".symtab"))->sh_link);

	sym->st_name = (uint32_t)strs->sh_size;
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), -ENOENT);
	sym->st_name = (uint32_t)strs->sh_size + 100;
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), -ENOENT);
	sym->st_name = UINT32_MAX;
	assert_int_equal(lookup_in(&r, "aiocop_fn", &vaddr), -ENOENT);

	/*
	 * The table's last byte made a non-NUL "X" and the symbol pointed at
	 * it: a reader that trusts NUL termination walks off the table.
	 */
	r.buf[strs->sh_offset + strs->sh_size - 1] = 'X';
	sym->st_name = (uint32_t)strs->sh_size - 1;
	assert_int_equal(lookup_in(&r, "X", &vaddr), -ENOENT);
	assert_int_equal(lookup_in(&r, "X.y", &vaddr), -ENOENT);
	free(r.buf);
}

static Elf64_Nhdr *fixture_build_id_note(struct raw *r)
{
	int idx = raw_section(r, ".note.gnu.build-id");

	assert_true(idx > 0);
	return (Elf64_Nhdr *)(r->buf + raw_shdr(r, (size_t)idx)->sh_offset);
}

static void test_hostile_notes(void **state)
{
	static const uint32_t bad[] = { UINT32_MAX, UINT32_MAX - 3, 1U << 20, 4096 };
	unsigned char id[ELF_BUILD_ID_MAX];
	struct elf_file *ef;
	char path[128];
	struct raw r;
	size_t i, len;

	NEED_FIXTURE();
	tmp_path(path, sizeof(path), "note.elf");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = fixture_copy();
		fixture_build_id_note(&r)->n_descsz = bad[i];
		assert_int_equal(write_file(path, r.buf, r.len), 0);
		assert_int_equal(elf_file_open(path, &ef), 0);
		assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len),
				 -ENOENT);
		elf_file_close(ef);

		fixture_build_id_note(&r)->n_descsz = 20;
		fixture_build_id_note(&r)->n_namesz = bad[i];
		assert_int_equal(write_file(path, r.buf, r.len), 0);
		assert_int_equal(elf_file_open(path, &ef), 0);
		assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len),
				 -ENOENT);
		elf_file_close(ef);
		free(r.buf);
	}

	/*
	 * One byte too long for its section but still inside the PT_NOTE
	 * segment (the ABI tag note follows): a 21-byte id or nothing.
	 */
	r = fixture_copy();
	fixture_build_id_note(&r)->n_descsz = 21;
	assert_int_equal(write_file(path, r.buf, r.len), 0);
	assert_int_equal(elf_file_open(path, &ef), 0);
	i = (size_t)-elf_file_build_id(ef, id, sizeof(id), &len);
	assert_true(i == ENOENT || (i == 0 && len == 21));
	elf_file_close(ef);
	free(r.buf);
}

static void test_hostile_segments(void **state)
{
	uint64_t magic, off;
	struct elf_file *ef;
	char path[128];
	struct raw r;
	size_t i;

	NEED_FIXTURE();
	tmp_path(path, sizeof(path), "seg.elf");
	r = fixture_copy();
	/* Every PT_LOAD claims far more file bytes than there are. */
	for (i = 0; i < raw_ehdr(&r)->e_phnum; i++) {
		if (raw_phdr(&r, i)->p_type == PT_LOAD) {
			raw_phdr(&r, i)->p_filesz = UINT64_MAX / 2;
			raw_phdr(&r, i)->p_memsz = UINT64_MAX;
		}
	}
	assert_int_equal(write_file(path, r.buf, r.len), 0);
	assert_int_equal(elf_file_open(path, &ef), 0);
	assert_int_equal(elf_file_read_vaddr(ef, oracle.magic, &magic,
					     sizeof(magic)), 0);
	assert_int_equal(magic, FIXTURE_MAGIC);
	assert_int_equal(elf_file_vaddr_to_offset(ef, UINT64_MAX / 4, &off),
			 -ENOENT);
	/* The first PT_LOAD maps offset 0 at 0x400000: clipped at EOF. */
	assert_int_equal(elf_file_read_vaddr(ef, 0x400000 + r.len - 4, &magic,
					     sizeof(magic)), -ERANGE);
	exercise_all(ef, r.len);
	elf_file_close(ef);

	/* Segments that start beyond EOF cover nothing. */
	for (i = 0; i < raw_ehdr(&r)->e_phnum; i++)
		raw_phdr(&r, i)->p_offset = UINT64_MAX - 4096;
	assert_int_equal(write_file(path, r.buf, r.len), 0);
	assert_int_equal(elf_file_open(path, &ef), 0);
	assert_int_equal(elf_file_read_vaddr(ef, oracle.magic, &magic,
					     sizeof(magic)), -ENOENT);
	assert_int_equal(elf_file_vaddr_to_offset(ef, oracle.fn, &off), -ENOENT);
	exercise_all(ef, r.len);
	elf_file_close(ef);
	free(r.buf);
}

/*
 * Random corruption of the headers and tables.  No expectations beyond
 * "no crash, and any offset handed out is inside the file".
 */
static void test_fuzz(void **state)
{
	const char *src = exists("/bin/true") ? "/bin/true" : fix_exec;
	struct raw orig, r;
	unsigned int seed = 12345;
	size_t iter, k;
	int opened = 0;

	NEED_FIXTURE();
	for (iter = 0; iter < 400; iter++) {
		size_t region, flips;

		assert_true(raw_load(&orig, iter % 2 ? src : fix_exec));
		r = orig;
		/* Aim at the ELF header, program headers and section table. */
		flips = 1 + rand_r(&seed) % 8;
		for (k = 0; k < flips; k++) {
			Elf64_Ehdr *eh = raw_ehdr(&r);
			size_t pos;

			region = rand_r(&seed) % 3;
			if (region == 0)
				pos = rand_r(&seed) % sizeof(*eh);
			else if (region == 1 || eh->e_shoff >= r.len)
				pos = rand_r(&seed) % 1024;
			else
				pos = eh->e_shoff + rand_r(&seed) % (r.len - eh->e_shoff);
			if (pos < r.len)
				r.buf[pos] = (unsigned char)rand_r(&seed);
		}
		if (write_and_open(r.buf, iter % 7 ? r.len :
				   rand_r(&seed) % r.len) == 0)
			opened++;
		free(orig.buf);
	}
	print_message("fuzz: %d of 400 mutants opened and were exercised\n",
		      opened);
	assert_true(opened > 0);
}

/* ---- USDT probe sites ---------------------------------------------------- */

#define NEED_USDT_FIXTURE() do {					\
		if (!have_usdt_fixture) {				\
			print_message("USDT fixture not built\n");	\
			skip();						\
		}							\
	} while (0)

static void test_usdt_sites(void **state)
{
	struct elf_usdt_site sites[4];
	struct elf_file *ef;
	struct raw r;
	uint64_t a, b, c;
	size_t n;

	NEED_USDT_FIXTURE();
	assert_true(raw_load(&r, fix_usdt));
	a = raw_symbol_offset(&r, "aiocop_probe_a");
	b = raw_symbol_offset(&r, "aiocop_probe_b");
	c = raw_symbol_offset(&r, "aiocop_probe_c");
	assert_int_equal(open_path(fix_usdt, &ef), 0);

	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "with_sema", sites, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0].offset, a);
	assert_int_equal(sites[0].ref_ctr_offset, raw_symbol_offset(&r, "aiocop_sema"));

	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "twice", sites, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sites[0].offset, b);
	assert_int_equal(sites[1].offset, c);
	assert_int_equal(sites[0].ref_ctr_offset, 0);
	/* more sites than room: the first ones, and a word that some are missing */
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "twice", sites, 1, &n), -ENOSPC);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0].offset, b);

	/* as prelink leaves it: .stapsdt.base moved, the note did not */
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "prelinked", sites, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0].offset, a);
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "no_base", sites, 4, &n), 0);
	assert_int_equal(sites[0].offset, a);

	/* a semaphore in code, a probe in data: nothing a uprobe could use */
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "code_sema", sites, 4, &n), -ENOENT);
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "data_pc", sites, 4, &n), -ENOENT);
	assert_int_equal(n, 0);
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "nope", sites, 4, &n), -ENOENT);
	assert_int_equal(elf_file_usdt_sites(ef, "other", "twice", sites, 4, &n), -ENOENT);
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "twic", sites, 4, &n), -ENOENT);
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "twice", NULL, 4, &n), -EINVAL);
	elf_file_close(ef);

	/* a file without notes */
	NEED_FIXTURE();
	assert_int_equal(open_path(fix_exec, &ef), 0);
	assert_int_equal(elf_file_usdt_sites(ef, "aiocop", "twice", sites, 4, &n), -ENOENT);
	elf_file_close(ef);
	free(r.buf);
}

/* Every byte of the notes overwritten in turn, by values that break lengths and strings. */
static void test_hostile_usdt(void **state)
{
	static const unsigned char vals[] = { 0x00, 0xff, 'x', 0x7f };
	Elf64_Shdr *notes;
	struct raw orig;
	size_t pos, v;
	int sec;

	NEED_USDT_FIXTURE();
	assert_true(raw_load(&orig, fix_usdt));
	sec = raw_section(&orig, ".note.stapsdt");
	assert_true(sec > 0);
	notes = raw_shdr(&orig, (size_t)sec);
	for (pos = 0; pos < notes->sh_size; pos++) {
		for (v = 0; v < sizeof(vals); v++) {
			unsigned char keep = orig.buf[notes->sh_offset + pos];

			orig.buf[notes->sh_offset + pos] = vals[v];
			assert_int_equal(write_and_open(orig.buf, orig.len), 0);
			orig.buf[notes->sh_offset + pos] = keep;
		}
	}
	free(orig.buf);
}

static void test_python_usdt(void **state)
{
	struct elf_usdt_site sites[4];
	struct elf_file *ef;
	size_t n;

	NEED_FILE(PY_EXEC);
	assert_int_equal(open_path(PY_EXEC, &ef), 0);
	/* Debian's build: one site each, semaphores in .probes (readelf -n, and -S) */
	assert_int_equal(elf_file_usdt_sites(ef, "python", "gc__start", sites, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0].offset, 0x426fc1 - 0x41f000 + 0x1f000);
	assert_int_equal(sites[0].ref_ctr_offset, 0x67dd40 + (0xa7ed4e - 0xa7ed40));
	assert_int_equal(elf_file_usdt_sites(ef, "python", "gc__done", sites, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(sites[0].offset, 0x42705b - 0x41f000 + 0x1f000);
	assert_int_equal(sites[0].ref_ctr_offset, 0x67dd40 + (0xa7ed50 - 0xa7ed40));
	elf_file_close(ef);
}

static void test_identity(void **state)
{
	struct elf_file_id id;
	struct elf_file *ef;
	struct stat st;

	NEED_FIXTURE();
	assert_int_equal(stat(fix_exec, &st), 0);
	assert_int_equal(open_path(fix_exec, &ef), 0);
	elf_file_identity(ef, &id);
	assert_int_equal(id.dev, st.st_dev);
	assert_int_equal(id.ino, st.st_ino);
	assert_int_equal(id.size, st.st_size);
	assert_int_equal(id.mtime_ns, (int64_t)st.st_mtim.tv_sec * 1000000000 +
				      st.st_mtim.tv_nsec);
	elf_file_close(ef);
}

/* ---- real Python binaries ---------------------------------------------- */

static void test_python_exec(void **state)
{
	char hex[2 * ELF_BUILD_ID_MAX + 1], raw_hex[2 * ELF_BUILD_ID_MAX + 1];
	unsigned char id[ELF_BUILD_ID_MAX];
	uint64_t vaddr, size, sec, secsz;
	struct elf_file *ef;
	Elf64_Sym *sym;
	struct raw r;
	size_t len;

	NEED_FILE(PY_EXEC);
	assert_true(raw_load(&r, PY_EXEC));
	assert_int_equal(open_path(PY_EXEC, &ef), 0);
	assert_int_equal(elf_file_type(ef), ET_EXEC);
	assert_int_equal(elf_file_has_symtab(ef), 0);

	sym = raw_symbol(&r, SHT_DYNSYM, "PySys_Audit", NULL);
	assert_non_null(sym);
	assert_int_equal(elf_file_find_symbol(ef, "PySys_Audit", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, sym->st_value);
	assert_int_equal(size, sym->st_size);
	assert_true(vaddr != 0);

	assert_int_equal(elf_file_find_section(ef, ".PyRuntime", &sec, &secsz), 0);
	assert_int_equal(elf_file_find_symbol(ef, "_PyRuntime", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, sec);
	assert_true(size <= secsz);

	assert_true(raw_build_id(&r, raw_hex));
	assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len), 0);
	hex_of(id, len, hex);
	assert_string_equal(hex, raw_hex);
	elf_file_close(ef);
	free(r.buf);
}

/* Address of PyContext_Type.tp_methods' "run" entry in python3.11 itself. */
static uint64_t python_context_run_meth(void)
{
	unsigned char entry[PY_METHODDEF_SIZE];
	uint64_t type, methods, name, meth;
	struct elf_file *ef;
	char mname[8];
	size_t i;

	assert_int_equal(open_path(PY_EXEC, &ef), 0);
	assert_int_equal(elf_file_find_symbol(ef, "PyContext_Type", false, &type,
					      NULL), 0);
	assert_int_equal(elf_file_read_vaddr(ef, type + PY311_TP_METHODS_OFF,
					     &methods, sizeof(methods)), 0);
	for (i = 0; i < 64; i++) {
		assert_int_equal(elf_file_read_vaddr(ef, methods + i * sizeof(entry),
						     entry, sizeof(entry)), 0);
		memcpy(&name, entry, sizeof(name));
		memcpy(&meth, entry + 8, sizeof(meth));
		if (name == 0)
			break;
		memset(mname, 0, sizeof(mname));
		assert_int_equal(elf_file_read_vaddr(ef, name, mname, 4), 0);
		if (strcmp(mname, "run") == 0) {
			elf_file_close(ef);
			return meth;
		}
	}
	elf_file_close(ef);
	fail_msg("no \"run\" in PyContext_Type.tp_methods");
	return 0;
}

static void test_python_debug_file(void **state)
{
	uint64_t vaddr, size, exe_vaddr, meth;
	struct elf_file *ef, *exe;
	Elf64_Sym *real;
	size_t cold_idx, real_idx;
	unsigned char byte;
	struct raw r;

	NEED_FILE(PY_EXEC);
	NEED_FILE(PY_DEBUG_FILE);
	assert_int_equal(open_path(PY_DEBUG_FILE, &ef), 0);
	assert_int_equal(elf_file_type(ef), ET_EXEC);
	assert_int_equal(elf_file_has_symtab(ef), 1);

	/* Only the LTO clone exists, so an exact lookup must fail. */
	assert_int_equal(elf_file_find_symbol(ef, "context_run", false, &vaddr,
					      &size), -ENOENT);
	assert_int_equal(elf_file_find_symbol(ef, "context_run", true, &vaddr,
					      &size), 0);
	meth = python_context_run_meth();
	assert_int_equal(vaddr, meth);
	print_message("context_run = %#lx (tp_methods \"run\" = %#lx)\n",
		      (unsigned long)vaddr, (unsigned long)meth);

	/* Debug-file symbols use the stripped binary's addresses. */
	assert_int_equal(open_path(PY_EXEC, &exe), 0);
	assert_int_equal(elf_file_find_symbol(exe, "PySys_Audit", false,
					      &exe_vaddr, NULL), 0);
	assert_int_equal(elf_file_find_symbol(ef, "PySys_Audit", false, &vaddr,
					      NULL), 0);
	assert_int_equal(vaddr, exe_vaddr);
	/* The code is in the binary, not in the debug file (NOBITS). */
	assert_int_equal(elf_file_read_vaddr(exe, meth, &byte, 1), 0);
	assert_int_equal(elf_file_read_vaddr(ef, meth, &byte, 1), -ENOENT);
	elf_file_close(exe);

	/* "tb_dealloc.lto_priv.0.cold" precedes the real clone in .symtab. */
	assert_true(raw_load(&r, PY_DEBUG_FILE));
	assert_non_null(raw_symbol(&r, SHT_SYMTAB, "tb_dealloc.lto_priv.0.cold",
				   &cold_idx));
	real = raw_symbol(&r, SHT_SYMTAB, "tb_dealloc.lto_priv.0", &real_idx);
	assert_non_null(real);
	assert_true(cold_idx < real_idx);
	assert_int_equal(elf_file_find_symbol(ef, "tb_dealloc", true, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, real->st_value);
	assert_int_equal(size, real->st_size);
	free(r.buf);

	/* ".cold" listed first too, but the exact symbol must win. */
	assert_true(raw_load(&r, PY_DEBUG_FILE));
	real = raw_symbol(&r, SHT_SYMTAB, "_PyEval_EvalFrameDefault", NULL);
	assert_non_null(real);
	assert_int_equal(elf_file_find_symbol(ef, "_PyEval_EvalFrameDefault",
					      true, &vaddr, &size), 0);
	assert_int_equal(vaddr, real->st_value);
	free(r.buf);
	elf_file_close(ef);
}

static void test_pyenv_libpython(void **state)
{
	uint64_t vaddr, size, text, textsz, off;
	struct elf_file *ef;
	Elf64_Sym *sym;
	struct raw r;

	NEED_FILE(PYENV_LIBPYTHON);
	assert_true(raw_load(&r, PYENV_LIBPYTHON));
	sym = raw_symbol(&r, SHT_SYMTAB, "context_run", NULL);
	assert_non_null(sym);

	assert_int_equal(open_path(PYENV_LIBPYTHON, &ef), 0);
	assert_int_equal(elf_file_type(ef), ET_DYN);
	assert_int_equal(elf_file_has_symtab(ef), 1);
	assert_int_equal(elf_file_find_symbol(ef, "context_run", false, &vaddr,
					      &size), 0);
	assert_int_equal(vaddr, sym->st_value);
	assert_int_equal(size, sym->st_size);
	assert_int_equal(elf_file_find_section(ef, ".text", &text, &textsz), 0);
	assert_true(vaddr >= text && vaddr + size <= text + textsz);
	assert_int_equal(elf_file_vaddr_to_offset(ef, vaddr, &off), 0);
	assert_true(off < r.len);
	assert_int_equal(elf_file_first_load(ef, &vaddr, &off), 0);
	assert_int_equal(vaddr, 0);
	assert_int_equal(off, 0);
	elf_file_close(ef);
	free(r.buf);
}

/* ---- separate debug files ---------------------------------------------- */

static void test_debuginfo_python(void **state)
{
	unsigned char id[ELF_BUILD_ID_MAX];
	char path[4096];
	struct elf_file *ef;
	size_t len;

	NEED_FILE(PY_EXEC);
	NEED_FILE(PY_DEBUG_FILE);
	assert_int_equal(open_path(PY_EXEC, &ef), 0);
	assert_int_equal(elf_file_build_id(ef, id, sizeof(id), &len), 0);
	elf_file_close(ef);

	/* The debug file's name is the build id, independently of our parser. */
	assert_int_equal(elf_debuginfo_path(PY_DEBUG_ROOT, id, len, path,
					    sizeof(path)), 0);
	assert_string_equal(path, PY_DEBUG_FILE);
	assert_int_equal(elf_debuginfo_path(NULL, id, len, path, sizeof(path)), 0);
	assert_string_equal(path, PY_DEBUG_FILE);
	assert_int_equal(elf_debuginfo_path(PY_DEBUG_ROOT, id, len, path, 20),
			 -ENAMETOOLONG);
	id[len - 1] ^= 1;
	assert_int_equal(elf_debuginfo_path(PY_DEBUG_ROOT, id, len, path,
					    sizeof(path)), -ENOENT);
}

static void test_debuginfo_tempdir(void **state)
{
	unsigned char id[ELF_BUILD_ID_MAX];
	char root[128], dir[256], file[512], path[512], cmd[1024];
	struct raw r;
	size_t len;

	NEED_FIXTURE();
	len = unhex(FIXTURE_ID, id);
	tmp_path(root, sizeof(root), "debugroot");
	snprintf(dir, sizeof(dir), "%s/.build-id/01", root);
	snprintf(file, sizeof(file), "%s/%s.debug", dir, &FIXTURE_ID[2]);

	/* Nothing there yet. */
	assert_int_equal(elf_debuginfo_path(root, id, len, path, sizeof(path)),
			 -ENOENT);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(elf_debuginfo_path(root, id, len, path, sizeof(path)),
			 -ENOENT);

	/* The right file. */
	assert_true(raw_load(&r, fix_exec));
	assert_int_equal(write_file(file, r.buf, r.len), 0);
	free(r.buf);
	assert_int_equal(elf_debuginfo_path(root, id, len, path, sizeof(path)), 0);
	assert_string_equal(path, file);
	assert_int_equal(elf_debuginfo_path(root, id, len, path, strlen(file)),
			 -ENAMETOOLONG);

	/* An ELF file with another build id under this one's name. */
	assert_true(raw_load(&r, fix_pie));
	assert_int_equal(write_file(file, r.buf, r.len), 0);
	free(r.buf);
	assert_int_equal(elf_debuginfo_path(root, id, len, path, sizeof(path)),
			 -ENOENT);

	/* Not an ELF file at all. */
	assert_int_equal(write_file(file, "not elf", 7), 0);
	assert_int_equal(elf_debuginfo_path(root, id, len, path, sizeof(path)),
			 -ENOEXEC);

	assert_int_equal(elf_debuginfo_path(root, id, 1, path, sizeof(path)),
			 -EINVAL);
	assert_int_equal(elf_debuginfo_path(root, id, 0, path, sizeof(path)),
			 -EINVAL);
	assert_int_equal(elf_debuginfo_path(root, id, ELF_BUILD_ID_MAX + 1, path,
					    sizeof(path)), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_built),
		cmocka_unit_test(test_open_missing),
		cmocka_unit_test(test_open_empty),
		cmocka_unit_test(test_open_not_elf),
		cmocka_unit_test(test_open_not_regular),
		cmocka_unit_test(test_open_32bit),
		cmocka_unit_test(test_open_foreign_byte_order),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_truncated_segments),
		cmocka_unit_test(test_fixture_exec),
		cmocka_unit_test(test_fixture_build_id),
		cmocka_unit_test(test_symbol_suffix),
		cmocka_unit_test(test_symbol_preference),
		cmocka_unit_test(test_find_section),
		cmocka_unit_test(test_first_load),
		cmocka_unit_test(test_hostile_header_tables),
		cmocka_unit_test(test_hostile_section_offsets),
		cmocka_unit_test(test_hostile_string_tables),
		cmocka_unit_test(test_hostile_symbol_names),
		cmocka_unit_test(test_hostile_notes),
		cmocka_unit_test(test_hostile_segments),
		cmocka_unit_test(test_fuzz),
		cmocka_unit_test(test_usdt_sites),
		cmocka_unit_test(test_hostile_usdt),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_python_usdt),
		cmocka_unit_test(test_python_exec),
		cmocka_unit_test(test_python_debug_file),
		cmocka_unit_test(test_pyenv_libpython),
		cmocka_unit_test(test_debuginfo_python),
		cmocka_unit_test(test_debuginfo_tempdir),
	};

	return cmocka_run_group_tests_name("elf_file", tests, group_setup,
					   group_teardown);
}
