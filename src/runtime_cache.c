// SPDX-License-Identifier: GPL-2.0
/*
 * The per-runtime-file LRU (see include/runtime_cache.h). A handful of slots searched
 * linearly: a host runs few interpreters, and a lookup is far cheaper than the ELF work it
 * saves. Keys compare in full, build id included, so a file replaced under the same inode
 * number is a new entry, never a stale hit.
 */
#include <string.h>

#include "runtime_cache.h"

static bool key_equal(const struct runtime_key *a, const struct runtime_key *b)
{
	return elf_file_id_equal(&a->file, &b->file) && a->build_id_len == b->build_id_len &&
	       memcmp(a->build_id, b->build_id, a->build_id_len) == 0;
}

static struct runtime_cache_slot *slot_of(struct runtime_cache *c,
					  const struct runtime_key *key)
{
	for (size_t i = 0; i < RUNTIME_CACHE_SLOTS; i++)
		if (c->slots[i].used && key_equal(&c->slots[i].key, key))
			return &c->slots[i];
	return NULL;
}

/* A free slot, else the least recently used one. */
static struct runtime_cache_slot *victim(struct runtime_cache *c)
{
	struct runtime_cache_slot *oldest = &c->slots[0];

	for (size_t i = 0; i < RUNTIME_CACHE_SLOTS; i++) {
		if (!c->slots[i].used)
			return &c->slots[i];
		if (c->slots[i].last_use < oldest->last_use)
			oldest = &c->slots[i];
	}
	return oldest;
}

const struct runtime_file *runtime_cache_find(struct runtime_cache *c,
					      const struct runtime_key *key)
{
	struct runtime_cache_slot *s = slot_of(c, key);

	if (!s) {
		c->misses++;
		return NULL;
	}
	c->hits++;
	s->last_use = ++c->clock;
	return &s->info;
}

void runtime_cache_store(struct runtime_cache *c, const struct runtime_key *key,
			 const struct runtime_file *info)
{
	struct runtime_cache_slot *s = slot_of(c, key);

	if (!s)
		s = victim(c);
	s->used = true;
	s->last_use = ++c->clock;
	s->key = *key;
	s->info = *info;
}

void runtime_cache_clear(struct runtime_cache *c)
{
	memset(c, 0, sizeof(*c));
}
