/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bounded_regex.h - compile an extended regular expression from configuration only when
 * compiling and matching it stay small.
 *
 * glibc's regcomp copies a group once per repetition an interval asks for, so nested
 * intervals multiply: "x{1,32767}{1,32767}" asks for a billion copies, and regcomp takes the
 * host's memory. A pattern is refused when its repetitions, expanded, would exceed
 * REGEX_MAX_EXPANDED atoms, when it is longer than REGEX_MAX_LENGTH bytes or nests groups
 * deeper than REGEX_MAX_DEPTH, and when it uses a back-reference (a GNU extension to ERE,
 * the one construct whose matching time grows exponentially with the text). Some small
 * patterns that nest repetitions still take regcomp exponential time: each of those is tried
 * in a child process first, and refused when that takes REGEX_TRIAL_MS, within a budget for
 * all of one configuration's.
 */
#ifndef AIOCOPD_BOUNDED_REGEX_H
#define AIOCOPD_BOUNDED_REGEX_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#define REGEX_MAX_LENGTH	1024
#define REGEX_MAX_EXPANDED	1024
#define REGEX_MAX_DEPTH		32
#define REGEX_TRIAL_MS		500	/* a trial compile; a real pattern takes well under 1 */

/*
 * The atoms (characters, bracket expressions, anchors) the pattern holds once every
 * repetition is expanded as glibc expands it, capped at REGEX_MAX_EXPANDED + 1, and in
 * *nested whether it repeats a group or a repeated atom; or -1 with *why set when it is
 * refused for depth or a back-reference. Pure: it reads only `pattern`.
 */
long regex_expanded_size(const char *pattern, bool *nested, const char **why);

/*
 * regcomp(re, pattern, REG_EXTENDED | flags) when the pattern is within the bounds above.
 * *trial_ms_left is what the trial compiles may still take, and is lowered by this one's.
 * On failure returns -1 and writes why into why[why_len]; *re is then not to be freed.
 */
int bounded_regcomp(regex_t *re, const char *pattern, int flags, unsigned *trial_ms_left,
		    char *why, size_t why_len);

#endif /* AIOCOPD_BOUNDED_REGEX_H */
