// SPDX-License-Identifier: GPL-2.0
/*
 * Tests for runtime_cache.c: a hit needs the whole key (file identity and build id), a
 * store of a known key replaces it in place, and a full cache evicts the entry used least
 * recently, counting lookups as uses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "runtime_cache.h"

static struct runtime_cache cache;

static struct runtime_key key_of(uint64_t ino)
{
	struct runtime_key k = {
		.file = { .dev = 2049, .ino = ino, .size = 6831208, .mtime_ns = 1700000000 },
		.build_id_len = 20,
	};

	memset(k.build_id, 0xc5, k.build_id_len);
	return k;
}

static struct runtime_file info_of(uint64_t audit)
{
	struct runtime_file f = { .python = true, .major = 3, .minor = 11,
				  .audit_offset = audit };

	return f;
}

static int setup(void **state)
{
	runtime_cache_clear(&cache);
	return 0;
}

static void test_miss_then_hit(void **state)
{
	struct runtime_key k = key_of(1);
	struct runtime_file f = info_of(0xf68d0);
	const struct runtime_file *got;

	assert_null(runtime_cache_find(&cache, &k));
	runtime_cache_store(&cache, &k, &f);
	got = runtime_cache_find(&cache, &k);
	assert_non_null(got);
	assert_int_equal(got->audit_offset, 0xf68d0);
	assert_int_equal(cache.hits, 1);
	assert_int_equal(cache.misses, 1);
	/* a copy is kept: changing the caller's struct changes nothing */
	f.audit_offset = 1;
	assert_int_equal(runtime_cache_find(&cache, &k)->audit_offset, 0xf68d0);
}

/* Each part of the key on its own makes another file. */
static void test_whole_key(void **state)
{
	struct runtime_key k = key_of(1), other;
	struct runtime_file f = info_of(1);

	runtime_cache_store(&cache, &k, &f);
	other = k;
	other.file.dev++;
	assert_null(runtime_cache_find(&cache, &other));
	other = k;
	other.file.ino++;
	assert_null(runtime_cache_find(&cache, &other));
	other = k;
	other.file.size--;
	assert_null(runtime_cache_find(&cache, &other));
	other = k;
	other.file.mtime_ns++;
	assert_null(runtime_cache_find(&cache, &other));
	other = k;
	other.build_id[19] ^= 1;
	assert_null(runtime_cache_find(&cache, &other));
	other = k;
	other.build_id_len = 8;
	assert_null(runtime_cache_find(&cache, &other));
	other = k;
	other.build_id_len = 0;
	assert_null(runtime_cache_find(&cache, &other));
	assert_non_null(runtime_cache_find(&cache, &k));
}

static void test_store_replaces_same_key(void **state)
{
	struct runtime_key k = key_of(7);
	struct runtime_file f = info_of(1);
	size_t used = 0;

	runtime_cache_store(&cache, &k, &f);
	f.audit_offset = 2;
	runtime_cache_store(&cache, &k, &f);
	assert_int_equal(runtime_cache_find(&cache, &k)->audit_offset, 2);
	for (size_t i = 0; i < RUNTIME_CACHE_SLOTS; i++)
		used += cache.slots[i].used;
	assert_int_equal(used, 1);
}

static void test_evicts_least_recently_used(void **state)
{
	struct runtime_key k;
	struct runtime_file f;

	for (uint64_t i = 0; i < RUNTIME_CACHE_SLOTS; i++) {
		k = key_of(100 + i);
		f = info_of(i);
		runtime_cache_store(&cache, &k, &f);
	}
	/* the oldest store is used again: the second oldest goes instead */
	k = key_of(100);
	assert_non_null(runtime_cache_find(&cache, &k));
	k = key_of(999);
	f = info_of(999);
	runtime_cache_store(&cache, &k, &f);
	k = key_of(101);
	assert_null(runtime_cache_find(&cache, &k));
	for (uint64_t i = 0; i < RUNTIME_CACHE_SLOTS; i++) {
		if (i == 1)
			continue;
		k = key_of(100 + i);
		assert_non_null(runtime_cache_find(&cache, &k));
		assert_int_equal(runtime_cache_find(&cache, &k)->audit_offset, i);
	}
	k = key_of(999);
	assert_int_equal(runtime_cache_find(&cache, &k)->audit_offset, 999);
}

static void test_clear(void **state)
{
	struct runtime_key k = key_of(3);
	struct runtime_file f = info_of(3);

	runtime_cache_store(&cache, &k, &f);
	runtime_cache_clear(&cache);
	assert_null(runtime_cache_find(&cache, &k));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_miss_then_hit, setup),
		cmocka_unit_test_setup(test_whole_key, setup),
		cmocka_unit_test_setup(test_store_replaces_same_key, setup),
		cmocka_unit_test_setup(test_evicts_least_recently_used, setup),
		cmocka_unit_test_setup(test_clear, setup),
	};

	return cmocka_run_group_tests_name("runtime_cache", tests, NULL, NULL);
}
