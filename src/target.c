// SPDX-License-Identifier: GPL-2.0
/*
 * Target inspection: from a pid to everything the probes need. The runtime is found in
 * /proc/PID/maps (libpython3.X.so, else the executable), its version read from Py_Version,
 * and context_run resolved through .symtab, then the build-id debug file, then the "run"
 * entry of PyContext_Type.tp_methods read from the target's memory (stripped builds).
 * The runtime file is opened as the kernel mapped it, never by a name the target could
 * redirect: /proc/PID/map_files/ where we may, else a name checked against the mapping's
 * device and inode before anything is opened (O_PATH), then reopened through that descriptor.
 * What the runtime file alone says is worked out once per file and cached (runtime_cache.h);
 * each process then costs a look at its maps, and its memory where the file cannot tell.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "elf_file.h"
#include "privileges.h"
#include "proc_facts.h"
#include "procmem.h"
#include "prologue.h"
#include "pydebug.h"
#include "runtime_cache.h"
#include "target.h"

#define MAPS_MAX		(4u << 20)
#define MAX_METHODS		64	/* PyContext_Type has 6; anything near this is garbage */
#define METHOD_DEF_SIZE		32	/* sizeof(PyMethodDef) on 64-bit */

struct mapping {
	struct target_mapping file;	/* address range and the file's device and inode */
	uint64_t offset;
	char perms[5];
	char path[PATH_MAX];		/* as /proc/PID/maps shows it: a newline is "\012" */
};

static int fail(char *err, size_t errsz, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
	return -code;
}

static bool parse_map_line(const char *line, struct mapping *m)
{
	int path_at = 0;

	memset(m, 0, sizeof(*m));
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %x:%x %" SCNu64 " %n",
		   &m->file.start, &m->file.end, m->perms, &m->offset, &m->file.dev_major,
		   &m->file.dev_minor, &m->file.ino, &path_at) < 7)
		return false;
	if (path_at > 0 && line[path_at] == '/')
		snprintf(m->path, sizeof(m->path), "%.*s", (int)strcspn(line + path_at, "\n"),
			 line + path_at);
	return true;
}

static const char *base_name(const char *path)
{
	const char *base = strrchr(path, '/');

	return base ? base + 1 : path;
}

/* Any major version: a 2.x runtime is refused by its version, not missed. */
static bool is_libpython(const char *path)
{
	return fnmatch("libpython[0-9]*.so*", base_name(path), 0) == 0;
}

/*
 * A program started by naming the dynamic loader (`ld-linux-x86-64.so.2 [--library-path …]
 * python3.14 …`, how a Python of another root runs on the host): the process's executable is
 * the loader, and the interpreter is a file the loader mapped.
 */
static bool is_dynamic_loader(const char *path)
{
	return fnmatch("ld-*.so*", base_name(path), 0) == 0;
}

static bool is_python_program(const char *path)
{
	return fnmatch("python[0-9]*", base_name(path), 0) == 0;
}

/*
 * Calls fn for every file-backed mapping; stops when fn returns non-zero and returns that.
 */
static int for_each_mapping(pid_t pid, int (*fn)(const struct mapping *, void *), void *arg)
{
	char path[64];
	FILE *f;
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t n;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while ((n = getline(&line, &cap, f)) > 0 && total < MAPS_MAX) {
		struct mapping m;

		total += n;
		if (!parse_map_line(line, &m) || !m.path[0])
			continue;
		ret = fn(&m, arg);
		if (ret)
			break;
	}
	free(line);
	fclose(f);
	return ret;
}

struct path_search {
	const char *needle;
	bool found;
};

static int path_contains(const struct mapping *m, void *arg)
{
	struct path_search *ps = arg;

	ps->found = strstr(m->path, ps->needle) != NULL;
	return ps->found;
}

bool target_maps_file(pid_t pid, const char *needle)
{
	struct path_search ps = { .needle = needle };

	for_each_mapping(pid, path_contains, &ps);
	return ps.found;
}

/*
 * /proc/PID/maps writes a newline in a path as "\012" (and nothing else escaped), so a
 * name read there is ambiguous: the file may be named with a newline or with those four
 * characters. Neither form is trusted; both are only candidates checked by inode.
 */
void target_maps_name_escape(const char *name, char *out, size_t outsz)
{
	size_t o = 0;

	if (!outsz)
		return;
	for (; *name; name++) {
		size_t need = *name == '\n' ? 4 : 1;

		if (o + need >= outsz)
			break;
		if (*name == '\n')
			memcpy(out + o, "\\012", 4);
		else
			out[o] = *name;
		o += need;
	}
	out[o] = 0;
}

void target_maps_name_unescape(const char *shown, char *out, size_t outsz)
{
	size_t o = 0;

	if (!outsz)
		return;
	while (*shown && o + 1 < outsz) {
		if (strncmp(shown, "\\012", 4) == 0) {
			out[o++] = '\n';
			shown += 4;
		} else {
			out[o++] = *shown++;
		}
	}
	out[o] = 0;
}

struct runtime_search {
	char exe[PATH_MAX];		/* the executable's name as maps shows it */
	struct mapping libpython, exe_map;
	struct mapping loaded;		/* the executable is the loader: the python it mapped */
};

static int note_runtime(const struct mapping *m, void *arg)
{
	struct runtime_search *rs = arg;

	if (!rs->libpython.path[0] && is_libpython(m->path))
		rs->libpython = *m;
	if (!rs->exe_map.path[0] && strcmp(m->path, rs->exe) == 0)
		rs->exe_map = *m;
	if (!rs->loaded.path[0] && is_dynamic_loader(rs->exe) && is_python_program(m->path))
		rs->loaded = *m;
	return 0;
}

static bool same_file(const struct mapping *m, const struct target_mapping *f)
{
	return m->file.dev_major == f->dev_major && m->file.dev_minor == f->dev_minor &&
	       m->file.ino == f->ino;
}

struct bias_search {
	const struct target_mapping *file;
	uint64_t file_offset;
	uint64_t start;
	bool found;
};

static int find_base(const struct mapping *m, void *arg)
{
	struct bias_search *bs = arg;

	if (!same_file(m, bs->file) || m->offset != bs->file_offset)
		return 0;
	bs->start = m->file.start;
	bs->found = true;
	return 1;
}

struct exec_search {
	const struct target_mapping *file;
	uint64_t addr;
	bool inside;
};

static int addr_in_exec_mapping(const struct mapping *m, void *arg)
{
	struct exec_search *es = arg;

	if (!same_file(m, es->file) || m->perms[2] != 'x')
		return 0;
	if (es->addr >= m->file.start && es->addr < m->file.end) {
		es->inside = true;
		return 1;
	}
	return 0;
}

/* Facts about runtime files, kept across targets; found with this debug root. */
static struct runtime_cache file_cache;
static char file_cache_debug_root[PATH_MAX];

static int not_python(const struct py_target *t, char *err, size_t errsz)
{
	return fail(err, errsz, TARGET_NOT_PYTHON,
		    "PID %d (%s) is not a CPython process: no _PyRuntime in %s",
		    t->pid, t->comm, t->runtime_path);
}

/* An O_PATH descriptor of a regular file, which opening did not open (no FIFO, no device). */
static int open_path_only(const char *path, struct stat *st)
{
	int fd = open(path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -ENOEXEC;
	}
	return fd;
}

/* -ESRCH when pid has exited, else err. */
static int gone_or(pid_t pid, int err)
{
	return proc_alive(pid) ? err : -ESRCH;
}

/* A candidate name of a mapped file, kept when its device and inode are the mapping's. */
static int open_if_mapped(const char *path, const struct target_mapping *m)
{
	struct stat st;
	int fd = open_path_only(path, &st);

	if (fd < 0)
		return fd;
	if (major(st.st_dev) == m->dev_major && minor(st.st_dev) == m->dev_minor &&
	    st.st_ino == m->ino)
		return fd;
	close(fd);
	return -ENOENT;
}

/*
 * The name maps shows, opened in one root: ours ("" prefix) or the target's
 * (/proc/PID/root). Both the name unescaped and as shown are tried (see
 * target_maps_name_escape).
 */
static int open_name_in(const char *prefix, const char *shown, const struct target_mapping *m)
{
	char name[PATH_MAX], path[PATH_MAX + 64];
	int fd;

	target_maps_name_unescape(shown, name, sizeof(name));
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s%s", prefix, i == 0 ? name : shown);
		fd = open_if_mapped(path, m);
		if (fd >= 0)
			return fd;
	}
	return -ENOENT;
}

/*
 * The file a mapping of pid shows, as an O_PATH descriptor, and in *via how it was found.
 * map_files/ is the kernel's own link to it (following it takes CAP_CHECKPOINT_RESTORE or
 * CAP_SYS_ADMIN); without those, /proc/PID/exe and the name maps shows are tried, and the
 * one whose device and inode are the mapping's wins. That name is relative to our root
 * when the target shares our mount namespace (a chroot's maps name the host's path), else
 * to the target's own root: that root is tried first then, ours first otherwise.
 * Returns the descriptor or -errno.
 */
static int open_mapped_file(pid_t pid, const struct target_mapping *m, const char *shown,
			    bool own_mnt_ns, const char **via)
{
	char path[64], target_root[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64, pid, m->start,
		 m->end);
	fd = open_path_only(path, &(struct stat){});
	*via = "/proc/PID/map_files";
	if (fd >= 0)
		return fd;
	if (fd == -ENOENT)
		return gone_or(pid, -ENOENT);	/* not mapped there any more */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	*via = "/proc/PID/exe";
	fd = open_if_mapped(path, m);
	if (fd >= 0)
		return fd;
	snprintf(target_root, sizeof(target_root), "/proc/%d/root", pid);
	for (int i = 0; i < 2; i++) {
		bool in_target_root = (i == 0) == own_mnt_ns;

		*via = in_target_root ? "its name in the target's root" : "its name in our root";
		fd = open_name_in(in_target_root ? target_root : "", shown, m);
		if (fd >= 0)
			return fd;
	}
	*via = NULL;
	return gone_or(pid, -ENOENT);
}

/* No name leads to the mapped file (deleted, replaced): map_files/ was the way, if we may. */
static int cannot_open_mapped(const struct py_target *t, char *err, size_t errsz)
{
	char why[256] = "";

	if (!privileges_have(PRIV_MAP_FILES))
		privileges_fail(PRIV_MAP_FILES, why, sizeof(why));
	return fail(err, errsz, TARGET_NO_ACCESS, "cannot open %s as PID %d maps it: no name "
		    "leads to its device and inode%s%s", t->runtime_path, t->pid,
		    why[0] ? "; " : "", why);
}

/* Opens what an O_PATH descriptor names, through the descriptor: no path is looked up again. */
static int elf_file_reopen(int fd, struct elf_file **ef)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return elf_file_open(path, ef);
}

/* Chooses the file that holds the interpreter and opens it. */
static int open_runtime(struct py_target *t, struct elf_file **ef, char *err, size_t errsz)
{
	struct runtime_search rs = {};
	const struct mapping *m;
	char link[64], exe[PATH_MAX];
	ssize_t n;
	int ret, fd;

	snprintf(link, sizeof(link), "/proc/%d/exe", t->pid);
	n = readlink(link, exe, sizeof(exe) - 1);
	if (n < 0)
		return fail(err, errsz, errno == ENOENT ? TARGET_NO_PROCESS : TARGET_NO_ACCESS,
			    "cannot read %s: %s", link, strerror(errno));
	exe[n] = 0;
	target_maps_name_escape(exe, rs.exe, sizeof(rs.exe));
	ret = for_each_mapping(t->pid, note_runtime, &rs);
	if (ret < 0)
		return fail(err, errsz, ret == -ENOENT ? TARGET_NO_PROCESS : TARGET_NO_ACCESS,
			    "cannot read /proc/%d/maps: %s", t->pid, strerror(-ret));
	m = rs.libpython.path[0] ? &rs.libpython : rs.loaded.path[0] ? &rs.loaded : &rs.exe_map;
	snprintf(t->runtime_path, sizeof(t->runtime_path), "%s", m->path[0] ? m->path : rs.exe);
	if (!m->path[0])
		return not_python(t, err, errsz);
	t->runtime_map = m->file;
	fd = open_mapped_file(t->pid, &t->runtime_map, m->path, t->place.own_mnt_ns,
			      &t->runtime_via);
	if (fd == -ESRCH)
		return fail(err, errsz, TARGET_NO_PROCESS, "no such process: %d", t->pid);
	if (fd < 0)
		return cannot_open_mapped(t, err, errsz);
	ret = elf_file_reopen(fd, ef);
	close(fd);
	if (ret)
		return not_python(t, err, errsz);
	elf_file_identity(*ef, &t->runtime_id);
	return 0;
}

int target_runtime_fd(const struct py_target *t)
{
	struct elf_file_id now = {};
	struct stat st;
	const char *via;
	int fd = open_mapped_file(t->pid, &t->runtime_map, t->runtime_path, t->place.own_mnt_ns,
				  &via);

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) == 0)
		elf_file_id_of(&st, &now);
	if (!elf_file_id_equal(&now, &t->runtime_id)) {
		close(fd);
		return -ESTALE;		/* not the file we read the offsets from */
	}
	return fd;
}

#define RODATA_SCAN_MAX	(16u << 20)

/*
 * 3.10 has no Py_Version: its PY_VERSION literal ("3.10.13") survives in .rodata, though
 * often only as the tail of a longer string (a build path). Take the micro version when
 * every such tail agrees, else leave it unknown.
 */
static int micro_from_rodata(struct elf_file *ef, int major, int minor)
{
	uint64_t addr, size;
	char prefix[16];
	char *buf;
	int micro = -1;
	size_t plen;

	if (elf_file_find_section(ef, ".rodata", &addr, &size) || size == 0 ||
	    size > RODATA_SCAN_MAX)
		return -1;
	buf = malloc(size + 1);
	if (!buf)
		return -1;
	if (elf_file_read_vaddr(ef, addr, buf, size)) {
		free(buf);
		return -1;
	}
	buf[size] = 0;
	plen = snprintf(prefix, sizeof(prefix), "%d.%d.", major, minor);
	for (char *p = memmem(buf, size, prefix, plen); p;
	     p = memmem(p + 1, size - (p + 1 - buf), prefix, plen)) {
		char *end;
		long v = strtol(p + plen, &end, 10);

		if (end == p + plen || *end != 0 || v < 0 || v > 99)
			continue;	/* not a whole "X.Y.Z" string ending */
		if (micro >= 0 && micro != v) {
			micro = -1;	/* two different answers: none */
			break;
		}
		micro = v;
	}
	free(buf);
	return micro;
}

/* Py_Version (3.11+) is PY_VERSION_HEX as a const; older versions only name themselves. */
static int read_version(const char *path, struct elf_file *ef, struct runtime_file *rf,
			char *err, size_t errsz)
{
	uint64_t addr, size;
	uint32_t hex = 0;
	const char *base;

	if (elf_file_find_symbol(ef, "Py_Version", false, &addr, &size) == 0 &&
	    elf_file_read_vaddr(ef, addr, &hex, sizeof(hex)) == 0) {
		rf->major = (hex >> 24) & 0xff;
		rf->minor = (hex >> 16) & 0xff;
		rf->micro = (hex >> 8) & 0xff;
		snprintf(rf->version, sizeof(rf->version), "%d.%d.%d", rf->major, rf->minor,
			 rf->micro);
	} else {
		base = strrchr(path, '/');
		base = base ? base + 1 : path;
		if (sscanf(base, "libpython%d.%d", &rf->major, &rf->minor) != 2 &&
		    sscanf(base, "python%d.%d", &rf->major, &rf->minor) != 2)
			return fail(err, errsz, TARGET_UNSUPPORTED,
				    "cannot tell the CPython version of %s", path);
		rf->micro = micro_from_rodata(ef, rf->major, rf->minor);
		if (rf->micro >= 0)
			snprintf(rf->version, sizeof(rf->version), "%d.%d.%d", rf->major,
				 rf->minor, rf->micro);
		else
			snprintf(rf->version, sizeof(rf->version), "%d.%d", rf->major, rf->minor);
	}
	rf->layout = pylayout_find(rf->major, rf->minor);
	return 0;
}

/* A runtime file and, opened only once a symbol is missing from it, its debug file. */
struct symbol_files {
	struct elf_file *ef;
	const char *debug_root;
	struct elf_file *dbg;
	bool dbg_tried;
};

/* The separate debug file of ef, by build id, or NULL. */
static struct elf_file *open_debuginfo(struct symbol_files *sf)
{
	unsigned char id[ELF_BUILD_ID_MAX];
	char path[PATH_MAX];
	size_t len;

	if (sf->dbg_tried)
		return sf->dbg;
	sf->dbg_tried = true;
	if (elf_file_build_id(sf->ef, id, sizeof(id), &len) ||
	    elf_debuginfo_path(sf->debug_root, id, len, path, sizeof(path)) ||
	    elf_file_open(path, &sf->dbg))
		sf->dbg = NULL;
	return sf->dbg;
}

/* Address of a (static) function named in the file's symbols or its debug file. */
static int find_static_vaddr(struct symbol_files *sf, const char *name, uint64_t *vaddr,
			     const char **source)
{
	struct elf_file *dbg;
	uint64_t size;

	if (elf_file_find_symbol(sf->ef, name, true, vaddr, &size) == 0) {
		*source = "symbol table";
		return 0;
	}
	dbg = open_debuginfo(sf);
	if (!dbg || elf_file_find_symbol(dbg, name, true, vaddr, &size))
		return -ENOENT;
	*source = "debug file";
	return 0;
}

/* File offset of a (static) function named in the file's symbols or its debug file. */
static int find_static(struct symbol_files *sf, const char *name, uint64_t *offset,
		       const char **source)
{
	uint64_t vaddr;

	if (find_static_vaddr(sf, name, &vaddr, source))
		return -ENOENT;
	return elf_file_vaddr_to_offset(sf->ef, vaddr, offset) ? -ERANGE : 0;
}

/* File offset of an exported function, 0 when the build has none. */
static uint64_t exported_offset(struct elf_file *ef, const char *name)
{
	uint64_t vaddr, size, offset;

	if (elf_file_find_symbol(ef, name, false, &vaddr, &size) ||
	    elf_file_vaddr_to_offset(ef, vaddr, &offset))
		return 0;
	return offset;
}

/* Garbage collections: the static collector if named anywhere, else the USDT probes. */
static void find_gc(struct symbol_files *sf, struct runtime_file *rf)
{
	struct elf_file *ef = sf->ef;
	const char *source;
	size_t n_start = 0, n_done = 0;
	int ret;

	if (find_static(sf, "gc_collect_main", &rf->gc_offset, &source) == 0)
		return;
	rf->gc_offset = 0;
	/* more sites than we keep: time the collections those cover, as the first ones */
	ret = elf_file_usdt_sites(ef, "python", "gc__start", rf->gc_start, RUNTIME_USDT_SITES,
				  &n_start);
	if (ret == 0 || ret == -ENOSPC)
		ret = elf_file_usdt_sites(ef, "python", "gc__done", rf->gc_done,
					  RUNTIME_USDT_SITES, &n_done);
	if ((ret == 0 || ret == -ENOSPC) && n_start && n_done) {
		rf->n_gc_start = n_start;
		rf->n_gc_done = n_done;
	}
}

/*
 * CPython's own callers audit through _PySys_Audit; 3.14 stopped exporting it, so there only
 * the file's symbols or its debug file name it (stripped builds: PySys_Audit alone).
 */
static uint64_t audit_tstate_offset(struct symbol_files *sf)
{
	uint64_t offset = exported_offset(sf->ef, "_PySys_Audit");
	const char *source;

	if (!offset && find_static(sf, "_PySys_Audit", &offset, &source))
		offset = 0;
	return offset;
}

/*
 * Both audit entry points hand the event to sys_audit_tstate(tstate, event, format, va_list).
 * Probed there, on the first push of its prologue, one uprobe sees every event and the
 * kernel emulates the probed instruction: PySys_Audit and _PySys_Audit begin with a `sub`,
 * which the kernel must single-step (docs/PERFORMANCE.md). Its symbol is static: 0 when no
 * symbol table names it or its prologue is not one prologue.c knows.
 */
static uint64_t audit_core_offset(struct symbol_files *sf)
{
	uint8_t code[PROLOGUE_BYTES];
	uint64_t vaddr, offset;
	const char *source;
	int at;

	if (find_static_vaddr(sf, "sys_audit_tstate", &vaddr, &source) ||
	    elf_file_read_vaddr(sf->ef, vaddr, code, sizeof(code)))
		return 0;
	/* CPython returns at once for a NULL thread state: no event to see there */
	at = prologue_push_offset(code, sizeof(code), 1);
	if (at < 0 || elf_file_vaddr_to_offset(sf->ef, vaddr + at, &offset))
		return 0;
	return offset;
}

static int find_probes(const char *path, struct elf_file *ef, const char *debug_root,
		       struct runtime_file *rf, char *err, size_t errsz)
{
	struct symbol_files sf = { .ef = ef, .debug_root = debug_root };
	int ret;

	ret = find_static(&sf, "context_run", &rf->context_run_offset, &rf->context_run_source);
	if (ret == -ENOENT)
		rf->context_run_offset = 0;	/* the process's PyContext_Type will say */
	find_gc(&sf, rf);
	rf->audit_tstate_offset = audit_tstate_offset(&sf);
	rf->audit_core_offset = audit_core_offset(&sf);
	elf_file_close(sf.dbg);
	if (ret == -ERANGE)
		return fail(err, errsz, TARGET_NO_SYMBOL, "context_run is outside %s's loaded "
			    "code", path);
	rf->audit_offset = exported_offset(ef, "PySys_Audit");
	if (!rf->audit_offset)
		return fail(err, errsz, TARGET_NO_SYMBOL, "cannot find PySys_Audit in %s", path);
	/* uvloop's callback boundary */
	rf->context_enter_offset = exported_offset(ef, "PyContext_Enter");
	rf->finalize_offset = exported_offset(ef, "Py_FinalizeEx");
	return 0;
}

/* Everything the runtime file alone says: is it CPython, which, where are its probes. */
static int analyse_file(const char *path, struct elf_file *ef, const char *debug_root,
			struct runtime_file *rf, char *err, size_t errsz)
{
	uint64_t size, get_version;
	int ret;

	memset(rf, 0, sizeof(*rf));
	if (elf_file_find_symbol(ef, "_PyRuntime", false, &rf->runtime_vaddr, &size) &&
	    elf_file_find_section(ef, ".PyRuntime", &rf->runtime_vaddr, &size)) {
		/* before 3.7 (2.x too) there is no _PyRuntime, but every CPython exports this */
		if (elf_file_find_symbol(ef, "Py_GetVersion", false, &get_version, &size))
			return 0;	/* not CPython: rf->python stays false */
		rf->python = true;
		return read_version(path, ef, rf, err, errsz);	/* too old: no layout */
	}
	rf->python = true;
	ret = read_version(path, ef, rf, err, errsz);
	if (ret || !rf->layout)
		return ret;		/* an unsupported version needs no more */
	if (elf_file_first_load(ef, &rf->load_vaddr, &rf->load_offset))
		return fail(err, errsz, TARGET_NOT_PYTHON, "%s has no loadable segment", path);
	return find_probes(path, ef, debug_root, rf, err, errsz);
}

static void cache_key(struct elf_file *ef, struct runtime_key *key)
{
	memset(key, 0, sizeof(*key));
	elf_file_identity(ef, &key->file);
	if (elf_file_build_id(ef, key->build_id, sizeof(key->build_id), &key->build_id_len))
		key->build_id_len = 0;
}

/* The facts of t's runtime file, from the cache when this file was analysed before. */
static int file_facts(const struct py_target *t, struct elf_file *ef, const char *debug_root,
		      struct runtime_file *rf, char *err, size_t errsz)
{
	const struct runtime_file *hit;
	struct runtime_key key;
	bool cacheable = strlen(debug_root) < sizeof(file_cache_debug_root);
	int ret;

	if (cacheable && strcmp(debug_root, file_cache_debug_root)) {
		runtime_cache_clear(&file_cache);
		snprintf(file_cache_debug_root, sizeof(file_cache_debug_root), "%s", debug_root);
	}
	cache_key(ef, &key);
	hit = cacheable ? runtime_cache_find(&file_cache, &key) : NULL;
	if (hit) {
		*rf = *hit;
		return 0;
	}
	ret = analyse_file(t->runtime_path, ef, debug_root, rf, err, errsz);
	if (ret == 0 && cacheable)
		runtime_cache_store(&file_cache, &key, rf);
	return ret;
}

static int unsupported(const struct py_target *t, const char *build, char *err, size_t errsz)
{
	return fail(err, errsz, TARGET_UNSUPPORTED,
		    "unsupported CPython version %s%s in PID %d (supported: %s%s)", t->version,
		    build, t->pid, pylayout_supported(), build[0] ? ", with the GIL" : "");
}

static int apply_file(struct py_target *t, const struct runtime_file *rf, char *err,
		      size_t errsz)
{
	if (!rf->python)
		return not_python(t, err, errsz);
	t->major = rf->major;
	t->minor = rf->minor;
	t->micro = rf->micro;
	snprintf(t->version, sizeof(t->version), "%s", rf->version);
	if (!rf->layout)
		return unsupported(t, "", err, errsz);
	t->layout_copy = *rf->layout;
	t->layout = &t->layout_copy;
	t->layout_source = "built-in table";
	t->context_run_offset = rf->context_run_offset;
	t->context_run_source = rf->context_run_source;
	t->audit_offset = rf->audit_offset;
	t->audit_tstate_offset = rf->audit_tstate_offset;
	t->audit_core_offset = rf->audit_core_offset;
	t->context_enter_offset = rf->context_enter_offset;
	t->gc_offset = rf->gc_offset;
	t->finalize_offset = rf->finalize_offset;
	t->gc_usdt = !rf->gc_offset && rf->n_gc_start;
	memcpy(t->gc_start, rf->gc_start, sizeof(t->gc_start));
	memcpy(t->gc_done, rf->gc_done, sizeof(t->gc_done));
	t->n_gc_start = rf->n_gc_start;
	t->n_gc_done = rf->n_gc_done;
	return 0;
}

static int compute_bias(struct py_target *t, const struct runtime_file *rf, char *err,
			size_t errsz)
{
	struct bias_search bs = { .file = &t->runtime_map, .file_offset = rf->load_offset };

	for_each_mapping(t->pid, find_base, &bs);
	if (!bs.found)
		return fail(err, errsz, TARGET_NO_ACCESS, "%s is not mapped in PID %d",
			    t->runtime_path, t->pid);
	t->bias = bs.start - rf->load_vaddr;
	t->runtime_addr = t->bias + rf->runtime_vaddr;
	return 0;
}

/* Stripped builds: PyContext_Type.tp_methods in the target lists {"run", context_run}. */
static int find_in_type_methods(const struct py_target *t, struct elf_file *ef, uint64_t *vaddr)
{
	uint64_t type, size, methods, entry[2];
	char name[8];
	struct exec_search es = { .file = &t->runtime_map };

	if (elf_file_find_symbol(ef, "PyContext_Type", false, &type, &size))
		return -ENOENT;
	if (procmem_read_u64(t->pid, t->bias + type + t->layout->user.type_methods, &methods))
		return -EFAULT;
	for (int i = 0; i < MAX_METHODS && methods; i++) {
		if (procmem_read(t->pid, methods + (uint64_t)i * METHOD_DEF_SIZE, entry,
				 sizeof(entry)))
			return -EFAULT;
		if (!entry[0])
			break;
		if (procmem_read_cstr(t->pid, entry[0], name, sizeof(name)) || strcmp(name, "run"))
			continue;
		es.addr = entry[1];
		for_each_mapping(t->pid, addr_in_exec_mapping, &es);
		if (!es.inside)
			return -EFAULT;		/* not code of this runtime: refuse it */
		*vaddr = entry[1] - t->bias;
		return 0;
	}
	return -ENOENT;
}

/*
 * Without symbols context_run is read from the process's own memory: per process, never
 * cached, so one hostile process cannot choose where another's probe goes.
 */
static int context_run_from_memory(struct py_target *t, struct elf_file *ef, char *err,
				   size_t errsz)
{
	uint64_t vaddr;

	if (t->context_run_offset)
		return 0;
	if (find_in_type_methods(t, ef, &vaddr))
		return fail(err, errsz, TARGET_NO_SYMBOL,
			    "cannot find Context.run (context_run) in %s", t->runtime_path);
	if (elf_file_vaddr_to_offset(ef, vaddr, &t->context_run_offset))
		return fail(err, errsz, TARGET_NO_SYMBOL, "context_run at 0x%" PRIx64
			    " is outside %s's loaded code", vaddr, t->runtime_path);
	t->context_run_source = "PyContext_Type.tp_methods";
	return 0;
}

static int read_comm(struct py_target *t, char *err, size_t errsz)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/comm", t->pid);
	n = proc_read_file(path, t->comm, sizeof(t->comm));
	if (n < 0)
		return fail(err, errsz, n == -ENOENT ? TARGET_NO_PROCESS : TARGET_NO_ACCESS,
			    n == -ENOENT ? "no such process: %d" : "cannot read /proc/%d: %s",
			    t->pid, strerror((int)-n));
	t->comm[strcspn(t->comm, "\n")] = 0;
	return 0;
}

/* 3.13+: prefer the interpreter's own offsets table to our row, when it reads sane. */
static int apply_debug_offsets(struct py_target *t, char *err, size_t errsz)
{
	uint8_t table[PYDEBUG_TABLE_MAX];
	int ret;

	if (t->major == 3 && t->minor < 13)
		return 0;
	if (procmem_read(t->pid, t->runtime_addr, table, sizeof(table)))
		return fail(err, errsz, TARGET_NO_ACCESS, "cannot read _PyRuntime of PID %d",
			    t->pid);
	/* its objects and frames are laid out and locked otherwise than any row says */
	if (pydebug_free_threaded(table, sizeof(table)))
		return unsupported(t, " (a free-threaded build)", err, errsz);
	ret = pydebug_apply(table, sizeof(table), t->major, t->minor, &t->layout_copy);
	if (ret == 0)
		t->layout_source = "_Py_DebugOffsets";
	else if (ret == -EINVAL)
		return fail(err, errsz, TARGET_UNSUPPORTED, "PID %d's _Py_DebugOffsets table does "
			    "not describe CPython %s: refusing to guess", t->pid, t->version);
	return 0;
}

/* The _asyncio module's table of its Task, when ef holds one: 0, -ENOENT or -EIO. */
static int read_asyncio_table(struct elf_file *ef, uint8_t *buf, size_t *len)
{
	uint64_t addr, size;

	if (elf_file_find_section(ef, PYDEBUG_ASYNCIO_SECTION, &addr, &size))
		return -ENOENT;
	if (size > PYDEBUG_ASYNCIO_SIZE)
		size = PYDEBUG_ASYNCIO_SIZE + 1;	/* a size we do not know: refused below */
	*len = size;
	return elf_file_read_vaddr(ef, addr, buf, size) ? -EIO : 0;
}

struct module_search {
	const char *pattern;
	struct mapping found;
};

static int find_module(const struct mapping *m, void *arg)
{
	struct module_search *ms = arg;

	if (fnmatch(ms->pattern, base_name(m->path), 0))
		return 0;
	ms->found = *m;
	return 1;
}

/* 3.14 keeps _asyncio in an extension, mapped once asyncio is imported: its table, opened as
 * the process maps it. */
static int read_extension_asyncio_table(const struct py_target *t, uint8_t *buf, size_t *len)
{
	struct module_search ms = { .pattern = "_asyncio.cpython-*.so" };
	struct elf_file *ext;
	const char *via;
	int fd, ret;

	if (for_each_mapping(t->pid, find_module, &ms) <= 0)
		return -ENOENT;
	fd = open_mapped_file(t->pid, &ms.found.file, ms.found.path, t->place.own_mnt_ns, &via);
	if (fd < 0)
		return fd;
	ret = elf_file_reopen(fd, &ext);
	close(fd);
	if (ret)
		return -ENOENT;
	ret = read_asyncio_table(ext, buf, len);
	elf_file_close(ext);
	return ret;
}

/*
 * 3.14+: the Task's fields from _asyncio's own table (in the runtime, or in the extension);
 * without one (asyncio not imported yet) the row stands, which tests hold equal to it.
 */
static int apply_asyncio_offsets(struct py_target *t, struct elf_file *ef, char *err,
				 size_t errsz)
{
	uint8_t table[PYDEBUG_ASYNCIO_SIZE + 1];
	size_t len = 0;
	int ret;

	if (t->major == 3 && t->minor < 14)
		return 0;
	ret = read_asyncio_table(ef, table, &len);
	if (ret == -ENOENT)
		ret = read_extension_asyncio_table(t, table, &len);
	if (ret)
		return 0;
	ret = pydebug_apply_asyncio(table, len, &t->layout_copy);
	if (ret == -EINVAL)
		return fail(err, errsz, TARGET_UNSUPPORTED, "PID %d's _asyncio offsets table does "
			    "not describe a Task: refusing to guess", t->pid);
	if (ret == 0)
		t->layout_source = "_Py_DebugOffsets and .AsyncioDebug tables";
	return 0;
}

int target_inspect(pid_t pid, const struct target_options *opts, struct py_target *t,
		   char *err, size_t errsz)
{
	const char *debug_root = opts && opts->debug_root ? opts->debug_root : "/usr/lib/debug";
	struct runtime_file rf;
	struct elf_file *ef = NULL;
	int ret;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (pid <= 0)
		return fail(err, errsz, TARGET_NO_PROCESS, "no such process: %d", pid);
	ret = read_comm(t, err, errsz);
	if (ret)
		return ret;
	target_place_read(pid, &t->place);
	ret = open_runtime(t, &ef, err, errsz);
	if (ret)
		return ret;
	ret = file_facts(t, ef, debug_root, &rf, err, errsz);
	if (!ret)
		ret = apply_file(t, &rf, err, errsz);
	if (!ret)
		ret = compute_bias(t, &rf, err, errsz);
	if (!ret)
		ret = apply_debug_offsets(t, err, errsz);
	if (!ret)
		ret = apply_asyncio_offsets(t, ef, err, errsz);
	if (!ret)
		ret = context_run_from_memory(t, ef, err, errsz);
	elf_file_close(ef);
	return ret;
}
