/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Short but unambiguous paths for text output (SPEC section 2). A text block names each file
 * by its last path components: the base name, unless another file of the same block ends the
 * same way (the application's server.py and websockets' server.py), then as many parent
 * directories as it takes to tell them apart ("app/server.py", "websockets/server.py").
 */
#ifndef AIOCOPD_TEXT_PATHS_H
#define AIOCOPD_TEXT_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#define PATH_SET_MAX	128	/* distinct files one block names; more are shown whole */

/* The distinct paths of one text block; it points into the strings it was given. */
struct path_set {
	const char *path[PATH_SET_MAX];
	size_t len[PATH_SET_MAX];
	size_t n;
	bool full;			/* a path did not fit: those are shown whole */
};

/* The path of a frame "path:line:function": its length (the frame ends at end). */
size_t frame_path_len(const char *frame, size_t frame_len);
/* Adds the path of every frame of trace (frames joined by " <- "). */
void path_set_add_trace(struct path_set *s, const char *trace);
void path_set_add(struct path_set *s, const char *path, size_t len);
/*
 * Where the shortest suffix of path (len bytes) that no other path of s ends with starts:
 * whole components only; the whole path when nothing shorter is unique or s is unknown to it.
 */
size_t path_set_short_start(const struct path_set *s, const char *path, size_t len);

#endif
