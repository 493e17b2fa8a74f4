// SPDX-License-Identifier: GPL-2.0
/*
 * Short but unambiguous paths (see text_paths.h). A block names a few dozen files at most,
 * so each suffix is simply checked against every other path of the block.
 */
#include <string.h>

#include "text_paths.h"

#define FRAME_SEPARATOR	" <- "

/* A frame is "path:line:function"; the function and line have no ':', the path may. */
size_t frame_path_len(const char *frame, size_t frame_len)
{
	size_t colons = 0;

	for (size_t i = frame_len; i-- > 0;)
		if (frame[i] == ':' && ++colons == 2)
			return i;
	return frame_len;		/* not a frame: "..." or a bare name */
}

static bool same_path(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && !memcmp(a, b, alen);
}

void path_set_add(struct path_set *s, const char *path, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (same_path(s->path[i], s->len[i], path, len))
			return;
	if (s->n == PATH_SET_MAX) {
		s->full = true;
		return;
	}
	s->path[s->n] = path;
	s->len[s->n++] = len;
}

void path_set_add_trace(struct path_set *s, const char *trace)
{
	const char *p = trace;

	while (p && *p) {
		const char *sep = strstr(p, FRAME_SEPARATOR);
		size_t n = sep ? (size_t)(sep - p) : strlen(p);

		path_set_add(s, p, frame_path_len(p, n));
		p = sep ? sep + strlen(FRAME_SEPARATOR) : NULL;
	}
}

/* Whether other (olen bytes) ends with the suffix, on a component boundary. */
static bool ends_with_component(const char *other, size_t olen, const char *suffix, size_t slen)
{
	if (olen < slen || memcmp(other + olen - slen, suffix, slen))
		return false;
	return olen == slen || other[olen - slen - 1] == '/';
}

static bool known(const struct path_set *s, const char *path, size_t len)
{
	for (size_t i = 0; i < s->n; i++)
		if (same_path(s->path[i], s->len[i], path, len))
			return true;
	return false;
}

/* Whether a path of s other than path itself ends with the suffix of path from start. */
static bool suffix_shared(const struct path_set *s, const char *path, size_t len, size_t start)
{
	for (size_t i = 0; i < s->n; i++) {
		if (same_path(s->path[i], s->len[i], path, len))
			continue;
		if (ends_with_component(s->path[i], s->len[i], path + start, len - start))
			return true;
	}
	return false;
}

size_t path_set_short_start(const struct path_set *s, const char *path, size_t len)
{
	size_t start = len;

	if (!known(s, path, len))
		return 0;		/* a path we could not compare: whole, so never mistaken */
	while (start > 0) {
		/* take one more component: back to the '/' before it */
		while (start > 0 && path[start - 1] == '/')
			start--;
		while (start > 0 && path[start - 1] != '/')
			start--;
		if (!suffix_shared(s, path, len, start))
			return start;
	}
	return 0;
}
