/*
 * test_linetable.c - unit tests for src/linetable.c.
 *
 * Checks the decoder against CPython's own co_lines() output recorded by
 * gen_linetable_vectors.py (tests/unit/data/linetable_*.vec, or the
 * directory / file named by $AIOCOPD_TEST_DATA), then feeds it hostile
 * tables.  Buffers handed to the decoder are malloc'd to their exact size
 * so that valgrind flags any over-read.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "linetable.h"

#define DEFAULT_DATA_DIR	"tests/unit/data"

struct vector {
	char *name;
	int firstlineno;
	uint8_t *table;
	size_t len;
	struct linetable_range *ranges;	/* co_lines() output */
	size_t nranges;
};

struct vecfile {
	char *path;
	enum linetable_format fmt;
	struct vector *v;
	size_t n;
};

static struct vecfile *files;
static size_t nfiles;
static bool single_file;	/* AIOCOPD_TEST_DATA named one file */

/* ---- vector file loading ------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Exact-size copy so valgrind sees every byte past the table as invalid. */
static uint8_t *dup_exact(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	assert_non_null(p);
	if (len)
		memcpy(p, src, len);
	return p;
}

static void parse_hex(const char *hex, struct vector *v)
{
	size_t n = strlen(hex), i;

	if (!strcmp(hex, "-")) {
		v->table = dup_exact(NULL, 0);
		v->len = 0;
		return;
	}
	if (n % 2)
		fail_msg("odd hex length in vector %s", v->name);
	v->len = n / 2;
	v->table = malloc(v->len ? v->len : 1);
	assert_non_null(v->table);
	for (i = 0; i < v->len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			fail_msg("bad hex in vector %s", v->name);
		v->table[i] = (uint8_t)(hi << 4 | lo);
	}
}

static char *next_tok(char **save)
{
	char *t = strtok_r(NULL, " \t\n", save);

	if (!t)
		fail_msg("truncated vector record");
	return t;
}

static long tok_long(char **save)
{
	char *t = next_tok(save), *end;
	long v;

	errno = 0;
	v = strtol(t, &end, 10);
	if (errno || *end || v < INT_MIN || v > INT_MAX)
		fail_msg("bad number '%s' in vector record", t);
	return v;
}

static void parse_record(char *line, struct vector *v)
{
	char *save, *t;
	size_t i;

	t = strtok_r(line, " \t\n", &save);
	v->name = strdup(t);
	v->firstlineno = (int)tok_long(&save);
	parse_hex(next_tok(&save), v);
	v->nranges = (size_t)tok_long(&save);
	v->ranges = calloc(v->nranges + 1, sizeof(*v->ranges));
	assert_non_null(v->ranges);
	for (i = 0; i < v->nranges; i++) {
		v->ranges[i].start = (int)tok_long(&save);
		v->ranges[i].end = (int)tok_long(&save);
		t = next_tok(&save);
		if (!strcmp(t, "-")) {
			v->ranges[i].line = -1;
		} else {
			char *end;

			v->ranges[i].line = (int)strtol(t, &end, 10);
			if (*end)
				fail_msg("bad line '%s' in %s", t, v->name);
		}
	}
}

static void load_file(const char *path)
{
	struct vecfile *f;
	char *line = NULL;
	size_t cap = 0;
	int fmt = -1;
	FILE *fp;

	fp = fopen(path, "r");
	if (!fp)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	files = realloc(files, (nfiles + 1) * sizeof(*files));
	assert_non_null(files);
	f = &files[nfiles++];
	memset(f, 0, sizeof(*f));
	f->path = strdup(path);

	while (getline(&line, &cap, fp) > 0) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "format %d", &fmt) == 1) {
			if (fmt != 310 && fmt != 311)
				fail_msg("%s: unknown format %d", path, fmt);
			f->fmt = fmt == 310 ? LINETABLE_310 : LINETABLE_311;
			continue;
		}
		if (fmt < 0)
			fail_msg("%s: record before 'format' line", path);
		f->v = realloc(f->v, (f->n + 1) * sizeof(*f->v));
		assert_non_null(f->v);
		parse_record(line, &f->v[f->n++]);
	}
	free(line);
	fclose(fp);
	if (!f->n)
		fail_msg("%s: no vectors", path);
}

static int load_all(void **state)
{
	const char *data = getenv("AIOCOPD_TEST_DATA");
	char pattern[PATH_MAX];
	struct stat st;
	glob_t g;
	size_t i;

	if (!data || !*data)
		data = DEFAULT_DATA_DIR;
	if (stat(data, &st) == 0 && S_ISREG(st.st_mode)) {
		single_file = true;
		load_file(data);
		return 0;
	}
	snprintf(pattern, sizeof(pattern), "%s/linetable_*.vec", data);
	if (glob(pattern, 0, NULL, &g) != 0) {
		fprintf(stderr, "no vector files match %s (run from the repo root "
			"or set AIOCOPD_TEST_DATA)\n", pattern);
		return -1;
	}
	for (i = 0; i < g.gl_pathc; i++)
		load_file(g.gl_pathv[i]);
	globfree(&g);
	return 0;
}

static int free_all(void **state)
{
	size_t i, j;

	for (i = 0; i < nfiles; i++) {
		for (j = 0; j < files[i].n; j++) {
			free(files[i].v[j].name);
			free(files[i].v[j].table);
			free(files[i].v[j].ranges);
		}
		free(files[i].v);
		free(files[i].path);
	}
	free(files);
	files = NULL;
	nfiles = 0;
	return 0;
}

/* ---- checks against co_lines() -------------------------------------- */

static int addr2line(enum linetable_format fmt, const struct vector *v, int addr)
{
	return linetable_addr2line(fmt, v->table, v->len, v->firstlineno, addr);
}

/* Every even offset of every co_lines() range maps to that range's line. */
static size_t check_offsets(enum linetable_format fmt, const struct vector *v)
{
	size_t i, checked = 0;
	int addr;

	for (i = 0; i < v->nranges; i++) {
		const struct linetable_range *r = &v->ranges[i];

		for (addr = r->start; addr < r->end; addr += 2) {
			int got = addr2line(fmt, v, addr);

			if (got != r->line)
				fail_msg("%s: addr %d: got line %d, co_lines says %d",
					 v->name, addr, got, r->line);
			checked++;
		}
	}
	if (v->nranges) {
		int past = v->ranges[v->nranges - 1].end;

		assert_int_equal(addr2line(fmt, v, past), -1);
		assert_int_equal(addr2line(fmt, v, past + 2), -1);
	}
	assert_int_equal(addr2line(fmt, v, -2), -1);
	return checked;
}

/* Coalesce adjacent same-line ranges; CPython versions differ on this. */
static size_t merge_ranges(struct linetable_range *r, size_t n)
{
	size_t i, out = 0;

	for (i = 0; i < n; i++) {
		if (out && r[out - 1].line == r[i].line && r[out - 1].end == r[i].start)
			r[out - 1].end = r[i].end;
		else
			r[out++] = r[i];
	}
	return out;
}

/* The iterator must reproduce co_lines() range for range (after merging). */
static void check_iter(enum linetable_format fmt, const struct vector *v)
{
	struct linetable_range *want, *got, r;
	struct linetable_iter it;
	size_t nwant, ngot = 0, cap = v->len + 1, i;
	int rc;

	want = malloc((v->nranges + 1) * sizeof(*want));
	got = malloc(cap * sizeof(*got));
	assert_non_null(want);
	assert_non_null(got);
	memcpy(want, v->ranges, v->nranges * sizeof(*want));
	nwant = merge_ranges(want, v->nranges);

	linetable_iter_init(&it, fmt, v->table, v->len, v->firstlineno);
	while ((rc = linetable_iter_next(&it, &r)) == 1) {
		assert_true(ngot < cap);	/* each range consumes >= 1 byte */
		got[ngot++] = r;
	}
	assert_int_equal(rc, 0);
	ngot = merge_ranges(got, ngot);

	if (ngot != nwant)
		fail_msg("%s: iterator gave %zu merged ranges, co_lines %zu",
			 v->name, ngot, nwant);
	for (i = 0; i < ngot; i++) {
		if (got[i].start != want[i].start || got[i].end != want[i].end ||
		    got[i].line != want[i].line)
			fail_msg("%s: range %zu: got (%d,%d,%d) want (%d,%d,%d)",
				 v->name, i, got[i].start, got[i].end, got[i].line,
				 want[i].start, want[i].end, want[i].line);
	}
	free(want);
	free(got);
}

static void check_format(enum linetable_format fmt)
{
	size_t i, j, nvec = 0;

	for (i = 0; i < nfiles; i++) {
		size_t offsets = 0, ranges = 0;

		if (files[i].fmt != fmt)
			continue;
		for (j = 0; j < files[i].n; j++) {
			offsets += check_offsets(fmt, &files[i].v[j]);
			ranges += files[i].v[j].nranges;
			check_iter(fmt, &files[i].v[j]);
		}
		nvec += files[i].n;
		printf("  %s: %zu code objects, %zu co_lines ranges, %zu offsets ok\n",
		       files[i].path, files[i].n, ranges, offsets);
	}
	/* One chosen file holds one format; a data directory must hold both. */
	if (!nvec && single_file)
		skip();
	if (!nvec)
		fail_msg("no vectors for format %s", fmt == LINETABLE_310 ? "3.10" : "3.11+");
}

static void test_vectors_310(void **state)
{
	check_format(LINETABLE_310);
}

static void test_vectors_311(void **state)
{
	check_format(LINETABLE_311);
}

/* ---- hostile input -------------------------------------------------- */

/*
 * Real tables, embedded so these tests do not depend on the data files:
 * `loops` from the corpus, compiled by 3.10.13 and 3.12.1.
 */
static const char loops_310_hex[] =
	"0401100108010201080104010e01060204010c0108010801020108030cfa04050801";
static const char loops_312_hex[] =
	"8000d80c0d8045dc10199825d31020f200070517890488018831d80b0c8839d80c14"
	"d80b0c88718a35d90c11d8080d901190519115890e8905f00b070517f00e00121790"
	"068805d808098041d80a0b8c6390258b6a8a2ed80809885189068801d80b0c90018a"
	"36d80c11f006000c1190218838804ff00d000b0c8c6390258b6a8b2ef00a000d0f88"
	"01d80b1090218838804f";

static uint8_t *from_hex(const char *hex, size_t *len)
{
	struct vector v = { .name = "embedded" };

	parse_hex(hex, &v);
	*len = v.len;
	return v.table;
}

/* co_lines() of the embedded tables, sampled (addr, line). */
static void test_embedded(void **state)
{
	static const int want310[][2] = {
		{ 0, 10 }, { 2, 10 }, { 4, 11 }, { 18, 11 }, { 20, 12 },
		{ 96, 26 }, { 104, 20 }, { 118, 25 }, { 126, 26 }, { 128, -1 },
	};
	static const int want312[][2] = {
		{ 0, 9 }, { 2, 10 }, { 6, 11 }, { 40, 12 }, { 78, 11 },
	};
	size_t len, i;
	uint8_t *t;

	t = from_hex(loops_310_hex, &len);
	for (i = 0; i < sizeof(want310) / sizeof(want310[0]); i++)
		assert_int_equal(linetable_addr2line(LINETABLE_310, t, len, 9,
						     want310[i][0]), want310[i][1]);
	free(t);
	t = from_hex(loops_312_hex, &len);
	for (i = 0; i < sizeof(want312) / sizeof(want312[0]); i++)
		assert_int_equal(linetable_addr2line(LINETABLE_311, t, len, 9,
						     want312[i][0]), want312[i][1]);
	free(t);
}

static int table_end(enum linetable_format fmt, const uint8_t *t, size_t len)
{
	struct linetable_iter it;
	struct linetable_range r;
	int end = 0;

	linetable_iter_init(&it, fmt, t, len, 0);
	while (linetable_iter_next(&it, &r) == 1)
		end = r.end;
	return end;
}

/*
 * Cut a real table at every length.  A prefix can only lose information:
 * every range the iterator still yields must agree with the full table at
 * each offset, and addr2line must give the full table's answer or -1, with
 * no over-read.  At most `probes` addr2line calls per cut keep big tables
 * from going quadratic twice over (each call decodes from the start).
 */
static void truncate_everywhere(enum linetable_format fmt, const uint8_t *full,
				size_t len, int firstlineno, int probes)
{
	int end = table_end(fmt, full, len), addr, *want;
	int stride = (end / 2 + 2) / probes + 1;
	struct linetable_iter it;
	struct linetable_range r;
	size_t cut;

	want = malloc(((size_t)end / 2 + 4) * sizeof(*want));
	assert_non_null(want);
	for (addr = 0; addr < end + 4; addr += 2)
		want[addr / 2] = linetable_addr2line(fmt, full, len, firstlineno, addr);

	for (cut = 0; cut <= len; cut++) {
		uint8_t *t = dup_exact(full, cut);

		linetable_iter_init(&it, fmt, t, cut, firstlineno);
		while (linetable_iter_next(&it, &r) == 1) {
			assert_true(r.end <= end);
			for (addr = r.start; addr < r.end; addr += 2)
				if (r.line != want[addr / 2])
					fail_msg("cut %zu/%zu: range (%d,%d) line %d, full table says %d",
						 cut, len, r.start, r.end, r.line, want[addr / 2]);
		}
		for (addr = 0; addr < end + 4; addr += 2 * stride) {
			int got = linetable_addr2line(fmt, t, cut, firstlineno, addr);

			if (got != want[addr / 2] && got != -1)
				fail_msg("cut %zu/%zu addr %d: got %d, full table says %d",
					 cut, len, addr, got, want[addr / 2]);
		}
		free(t);
	}
	free(want);
}

/* Pick up to `max` real tables of format fmt, largest first, below a size cap. */
static void truncate_vectors(enum linetable_format fmt, size_t cap, int max, int probes)
{
	const struct vector *done[8] = { 0 };
	int picked;

	assert_true(max <= 8);
	for (picked = 0; picked < max; picked++) {
		const struct vector *best = NULL;
		size_t i, j;
		int k;

		for (i = 0; i < nfiles; i++) {
			if (files[i].fmt != fmt)
				continue;
			for (j = 0; j < files[i].n; j++) {
				const struct vector *v = &files[i].v[j];
				bool seen = false;

				for (k = 0; k < picked; k++)
					seen |= done[k] == v;
				if (!seen && v->len <= cap && (!best || v->len > best->len))
					best = v;
			}
		}
		if (!best)
			break;
		done[picked] = best;
		truncate_everywhere(fmt, best->table, best->len, best->firstlineno, probes);
	}
}

static void test_truncated(void **state)
{
	uint8_t *t;
	size_t len;

	t = from_hex(loops_310_hex, &len);
	truncate_everywhere(LINETABLE_310, t, len, 9, INT_MAX);
	free(t);
	t = from_hex(loops_312_hex, &len);
	truncate_everywhere(LINETABLE_311, t, len, 9, INT_MAX);
	free(t);

	/* More from the recorded vectors: mid-sized ones fully, the biggest sampled. */
	truncate_vectors(LINETABLE_310, 256, 3, INT_MAX);
	truncate_vectors(LINETABLE_311, 256, 3, INT_MAX);
	truncate_vectors(LINETABLE_310, SIZE_MAX, 1, 4);
	truncate_vectors(LINETABLE_311, SIZE_MAX, 1, 4);
}

static void test_empty(void **state)
{
	uint8_t *t = dup_exact(NULL, 0);
	int fmt;

	for (fmt = LINETABLE_310; fmt <= LINETABLE_311; fmt++) {
		assert_int_equal(linetable_addr2line(fmt, t, 0, 1, 0), -1);
		assert_int_equal(linetable_addr2line(fmt, NULL, 0, 1, 0), -1);
		/* NULL with a bogus length must not be dereferenced. */
		assert_int_equal(linetable_addr2line(fmt, NULL, 100, 1, 0), -1);
	}
	free(t);
}

static void test_all_ff(void **state)
{
	size_t len;
	int addr;

	for (len = 1; len <= 64; len++) {
		uint8_t *t = malloc(len);

		assert_non_null(t);
		memset(t, 0xff, len);
		/* 3.11+: 0xff is a "no location" entry of 8 code units each. */
		for (addr = 0; addr < (int)len * 16 + 32; addr += 2)
			assert_int_equal(linetable_addr2line(LINETABLE_311, t, len, 5, addr), -1);
		/* 3.10: pairs of (255 bytes, line -1); a lone trailing byte is ignored. */
		for (addr = 0; addr < (int)(len / 2) * 255 + 32; addr++) {
			int k = addr / 255;
			int want = k < (int)(len / 2) ? 1000 - (k + 1) : -1;

			assert_int_equal(linetable_addr2line(LINETABLE_310, t, len, 1000, addr), want);
		}
		/* Lines walking below zero are not real lines. */
		assert_int_equal(linetable_addr2line(LINETABLE_310, t, len, 0, 0), -1);
		free(t);
	}
}

static void test_runaway_varint(void **state)
{
	static const uint8_t heads[] = { 0xf0, 0xe8, 0xf7, 0xef };	/* LONG, NO_COLUMNS */
	size_t n, h;

	for (h = 0; h < sizeof(heads); h++) {
		for (n = 1; n <= 200; n++) {
			uint8_t *t = malloc(n);

			assert_non_null(t);
			/* Header, then varint bytes whose continuation bit never clears. */
			t[0] = heads[h];
			memset(t + 1, 0x7f, n - 1);
			assert_int_equal(linetable_addr2line(LINETABLE_311, t, n, 7, 0), -1);
			assert_int_equal(linetable_addr2line(LINETABLE_311, t, n, 7, 1000), -1);
			free(t);
		}
	}
}

static void test_runaway_after_valid(void **state)
{
	/* ONE_LINE1 (2 units) then LONG whose varint runs into the table end. */
	static const uint8_t tmpl[] = { 0xd9, 0x00, 0x00, 0xf0, 0x7f, 0x7f, 0x7f };
	/* Same, but the varint runs into the next entry header instead. */
	static const uint8_t tmpl2[] = { 0xd9, 0x00, 0x00, 0xf0, 0x41, 0x80 };
	uint8_t *t = dup_exact(tmpl, sizeof(tmpl));

	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(tmpl), 7, 0), 8);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(tmpl), 7, 2), 8);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(tmpl), 7, 4), -1);
	free(t);
	t = dup_exact(tmpl2, sizeof(tmpl2));
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(tmpl2), 7, 2), 8);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(tmpl2), 7, 4), -1);
	free(t);
}

static void test_varint_chunks(void **state)
{
	/* NO_COLUMNS entries with a +3 delta in 1..5 chunks all decode; 6 chunks is too many. */
	static const uint8_t ok5[] = { 0xe8, 0x46, 0x40, 0x40, 0x40, 0x00 };
	static const uint8_t bad6[] = { 0xe8, 0x46, 0x40, 0x40, 0x40, 0x40, 0x00 };
	static const uint8_t neg[] = { 0xe8, 0x07 };	/* -3 */
	uint8_t *t;

	t = dup_exact(ok5, sizeof(ok5));
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(ok5), 10, 0), 13);
	free(t);
	t = dup_exact(bad6, sizeof(bad6));
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(bad6), 10, 0), -1);
	free(t);
	t = dup_exact(neg, sizeof(neg));
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(neg), 10, 0), 7);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(neg), 2, 0), -1);
	free(t);
}

static void test_bad_header(void **state)
{
	/* A 3.11+ table must start on an entry header byte. */
	static const uint8_t tmpl[] = { 0x00, 0x80, 0x00 };
	uint8_t *t = dup_exact(tmpl, sizeof(tmpl));

	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(tmpl), 1, 0), -1);
	/* An unknown format value decodes nothing. */
	assert_int_equal(linetable_addr2line((enum linetable_format)7, t, sizeof(tmpl), 1, 0), -1);
	free(t);
}

static void test_addr_extremes(void **state)
{
	static const int addrs[] = { INT_MIN, INT_MIN + 1, -1000, -2, -1, INT_MAX - 1, INT_MAX };
	uint8_t *t310, *t312;
	size_t l310, l312, i;

	t310 = from_hex(loops_310_hex, &l310);
	t312 = from_hex(loops_312_hex, &l312);
	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		assert_int_equal(linetable_addr2line(LINETABLE_310, t310, l310, 9, addrs[i]), -1);
		assert_int_equal(linetable_addr2line(LINETABLE_311, t312, l312, 9, addrs[i]), -1);
	}
	free(t310);
	free(t312);
}

static void test_line_overflow(void **state)
{
	/* 3.10: +127 per pair from near INT_MAX must not wrap. */
	static const uint8_t p310[] = { 2, 0, 2, 127, 2, 127 };
	/*
	 * 3.11+: LONG entries (1 unit) of +2^28 each, the largest delta a
	 * five-chunk varint carries: zigzag 2^29 = chunks 0,0,0,0,0x20.
	 */
	static const uint8_t entry[] = { 0xf0, 0x40, 0x40, 0x40, 0x40, 0x20 };
	uint8_t p311[9 * sizeof(entry)];
	uint8_t *t;
	int i;

	t = dup_exact(p310, sizeof(p310));
	assert_int_equal(linetable_addr2line(LINETABLE_310, t, sizeof(p310), INT_MAX - 130, 0),
			 INT_MAX - 130);
	assert_int_equal(linetable_addr2line(LINETABLE_310, t, sizeof(p310), INT_MAX - 130, 2),
			 INT_MAX - 3);
	assert_int_equal(linetable_addr2line(LINETABLE_310, t, sizeof(p310), INT_MAX - 130, 4), -1);
	free(t);

	for (i = 0; i < 9; i++)
		memcpy(p311 + i * sizeof(entry), entry, sizeof(entry));
	t = dup_exact(p311, sizeof(p311));
	/* Seven steps of 2^28 stay below INT_MAX; the eighth is 2^31. */
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(p311), 0, 0), 1 << 28);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(p311), 0, 12), 7 << 28);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(p311), 0, 14), -1);
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(p311), 0, 16), -1);
	/* From INT_MIN the running line is in range but negative: not a line. */
	assert_int_equal(linetable_addr2line(LINETABLE_311, t, sizeof(p311), INT_MIN, 0), -1);
	free(t);
}

static void test_offset_overflow(void **state)
{
	/* 3.10 pairs of 255 bytes: the running offset passes INT_MAX. */
	size_t pairs = (size_t)INT_MAX / 255 + 4, len = pairs * 2, i;
	uint8_t *t = malloc(len);

	assert_non_null(t);
	for (i = 0; i < len; i += 2) {
		t[i] = 255;
		t[i + 1] = 0;
	}
	assert_int_equal(linetable_addr2line(LINETABLE_310, t, len, 3, 0), 3);
	assert_int_equal(linetable_addr2line(LINETABLE_310, t, len, 3, 255 * 1000), 3);
	assert_int_equal(linetable_addr2line(LINETABLE_310, t, len, 3, INT_MAX - 1), -1);
	free(t);
}

static void test_iter_sticky(void **state)
{
	/* SHORT0 header (1 unit) with three payload bytes: one entry, then the end. */
	static const uint8_t tmpl[] = { 0x80, 0x00, 0x00, 0x7f };
	uint8_t *t = dup_exact(tmpl, sizeof(tmpl));
	struct linetable_iter it;
	struct linetable_range r;

	linetable_iter_init(&it, LINETABLE_311, t, sizeof(tmpl), 4);
	assert_int_equal(linetable_iter_next(&it, &r), 1);
	assert_int_equal(r.start, 0);
	assert_int_equal(r.end, 2);
	assert_int_equal(r.line, 4);
	assert_int_equal(linetable_iter_next(&it, &r), 0);
	assert_int_equal(linetable_iter_next(&it, &r), 0);
	free(t);

	/* No header byte first: malformed, and it stays that way. */
	t = dup_exact((const uint8_t *)"\x01\x80", 2);
	linetable_iter_init(&it, LINETABLE_311, t, 2, 4);
	assert_int_equal(linetable_iter_next(&it, &r), -1);
	assert_int_equal(linetable_iter_next(&it, &r), -1);
	free(t);
}

/* xorshift32: reproducible noise without libc rand() state. */
static uint32_t rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random tables: no crash, no over-read, addr2line agrees with the iterator. */
static void test_random(void **state)
{
	uint32_t seed = 0x12345678;
	int round, fmt;

	for (round = 0; round < 3000; round++) {
		size_t len = rng_next(&seed) % 48, i;
		uint8_t *t = malloc(len ? len : 1);
		int first = (int)(rng_next(&seed) % 2000) - 100;

		assert_non_null(t);
		for (i = 0; i < len; i++)
			t[i] = (uint8_t)rng_next(&seed);
		if (len && round % 2)
			t[0] |= 0x80;	/* get past the header check half the time */
		for (fmt = LINETABLE_310; fmt <= LINETABLE_311; fmt++) {
			struct linetable_iter it;
			struct linetable_range r;
			int steps = 0;

			linetable_iter_init(&it, fmt, t, len, first);
			while (linetable_iter_next(&it, &r) == 1) {
				int addr;

				assert_true(++steps <= (int)len);
				assert_true(r.start < r.end);
				assert_true(r.line >= -1);
				for (addr = r.start; addr < r.end; addr++)
					assert_int_equal(linetable_addr2line(fmt, t, len, first, addr),
							 r.line);
			}
			assert_int_equal(linetable_addr2line(fmt, t, len, first, it.end > INT_MAX ?
							     INT_MAX : (int)it.end), -1);
		}
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest vectors[] = {
		cmocka_unit_test(test_vectors_310),
		cmocka_unit_test(test_vectors_311),
		cmocka_unit_test(test_truncated),
	};
	const struct CMUnitTest hostile[] = {
		cmocka_unit_test(test_embedded),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_all_ff),
		cmocka_unit_test(test_runaway_varint),
		cmocka_unit_test(test_runaway_after_valid),
		cmocka_unit_test(test_varint_chunks),
		cmocka_unit_test(test_bad_header),
		cmocka_unit_test(test_addr_extremes),
		cmocka_unit_test(test_line_overflow),
		cmocka_unit_test(test_offset_overflow),
		cmocka_unit_test(test_iter_sticky),
		cmocka_unit_test(test_random),
	};
	int failed = 0;

	failed += cmocka_run_group_tests_name("linetable_vectors", vectors, load_all, free_all);
	failed += cmocka_run_group_tests_name("linetable_hostile", hostile, NULL, NULL);
	return failed ? 1 : 0;
}
