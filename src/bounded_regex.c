// SPDX-License-Identifier: GPL-2.0
/*
 * Extended regular expressions from configuration, refused before regcomp when they would be
 * costly to compile or to match (see bounded_regex.h for why). The size is found by walking
 * the pattern once, the way regcomp's parser reads it, with one running sum per open group:
 * an atom adds one, a group is an atom as large as what it holds, and a repetition multiplies
 * the atom before it by the copies glibc makes of it. Anything this walk misreads is only an
 * approximation of the size; whether the pattern is valid is still regcomp's to say.
 *
 * Within that size, regcomp can still take exponential time: its epsilon closures over
 * repeated groups that match the empty string, "(a||||)+++", took 5 s for a pattern of 60
 * bytes. No rule on the pattern's shape is known to catch every such case, so a pattern that
 * nests repetitions (repeats a group, or a repeated atom) is first compiled in a child
 * process, killed when it runs too long; only then here. Without nesting, a pattern of the
 * largest size took regcomp 10 ms at most ("a{1,1024}").
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bounded_regex.h"

#define SIZE_CAP	(REGEX_MAX_EXPANDED + 1L)

/*
 * One open group: the atoms of its finished pieces, and of its last atom (which a following
 * repetition applies to), apart; and whether that atom is a group or repeated already, when
 * a repetition of it nests repetitions.
 */
struct group_size {
	long done;
	long last;
	bool last_is_group;
	bool last_repeated;
};

static long size_add(long a, long b)
{
	return a + b > SIZE_CAP ? SIZE_CAP : a + b;
}

static long size_times(long a, long b)
{
	if (a && b > SIZE_CAP / a)
		return SIZE_CAP;
	return a * b > SIZE_CAP ? SIZE_CAP : a * b;
}

static void add_atom(struct group_size *g, long atoms)
{
	g->done = size_add(g->done, g->last);
	g->last = atoms;
	g->last_is_group = g->last_repeated = false;
}

/* The repeated atom: a repetition with nothing before it repeats a literal, or is refused. */
static void repeat_last(struct group_size *g, long copies, bool *nested)
{
	if (g->last_is_group || g->last_repeated)
		*nested = true;
	g->last = size_times(g->last ? g->last : 1, copies);
	g->last_repeated = true;
}

/* Past the bracket expression that starts at s ('['): its ']' is literal when it comes
 * first, and [:class:], [=equiv=] and [.coll.] may hold one. At the terminating NUL when the
 * expression is not closed. */
static const char *bracket_end(const char *s)
{
	s++;
	if (*s == '^')
		s++;
	if (*s == ']')
		s++;
	while (*s && *s != ']') {
		if (*s == '[' && (s[1] == ':' || s[1] == '=' || s[1] == '.')) {
			char kind = s[1];

			s += 2;
			while (*s && !(s[0] == kind && s[1] == ']'))
				s++;
			if (*s)
				s += 2;
			continue;
		}
		s++;
	}
	return *s ? s + 1 : s;
}

/* Digits at *s as a number, capped at SIZE_CAP; -1 when there are none. */
static long read_count(const char **s)
{
	long n = -1;

	for (; **s >= '0' && **s <= '9'; (*s)++) {
		long digit = **s - '0';

		n = n < 0 ? digit : n * 10 + digit;
		if (n > SIZE_CAP)
			n = SIZE_CAP;
	}
	return n;
}

/*
 * The interval whose '{' is at s: "{m}", "{m,}", "{m,n}" or glibc's "{,n}". Returns the end
 * past its '}' and the copies glibc makes of the repeated atom (m, and n - m optional ones, or
 * one starred one when there is no n); NULL when it is not an interval, and then the '{' is
 * a literal or an error for regcomp.
 */
static const char *read_interval(const char *s, long *copies)
{
	long min, max;

	s++;
	min = read_count(&s);
	max = min;
	if (*s == ',') {
		s++;
		max = read_count(&s);
		if (max < 0)
			max = (min < 0 ? 0 : min) + 1;
	}
	if (*s != '}' || (min < 0 && max < 0))
		return NULL;
	if (min > max)
		max = min;
	*copies = max > 0 ? max : 1;
	return s + 1;
}

long regex_expanded_size(const char *pattern, bool *nested, const char **why)
{
	struct group_size groups[REGEX_MAX_DEPTH + 1] = { { 0 } };
	struct group_size *g = &groups[0];
	const char *s = pattern;
	long copies;

	*nested = false;
	while (*s) {
		switch (*s) {
		case '\\':
			if (s[1] >= '1' && s[1] <= '9') {
				*why = "uses a back-reference (\\1 to \\9)";
				return -1;
			}
			s += s[1] ? 2 : 1;
			add_atom(g, 1);
			break;
		case '[':
			s = bracket_end(s);
			add_atom(g, 1);
			break;
		case '(':
			if (g == &groups[REGEX_MAX_DEPTH]) {
				*why = "nests groups too deeply";
				return -1;
			}
			g++;
			*g = (struct group_size){ 0 };
			s++;
			break;
		case ')':
			if (g == &groups[0]) {
				add_atom(g, 1);
			} else {
				long inner = size_add(g->done, g->last);

				g--;
				add_atom(g, inner ? inner : 1);
				g->last_is_group = true;
			}
			s++;
			break;
		case '|':
			add_atom(g, 0);
			s++;
			break;
		case '*':
		case '?':
			repeat_last(g, 1, nested);
			s++;
			break;
		case '+':
			repeat_last(g, 2, nested);	/* glibc reads x+ as x x* */
			s++;
			break;
		case '{': {
			const char *end = read_interval(s, &copies);

			if (end) {
				repeat_last(g, copies, nested);
				s = end;
			} else {
				add_atom(g, 1);
				s++;
			}
			break;
		}
		default:
			add_atom(g, 1);
			s++;
		}
	}
	/* groups left open: regcomp refuses them; their atoms still count */
	for (; g > &groups[0]; g--)
		add_atom(g - 1, size_add(g->done, g->last));
	return size_add(g->done, g->last);
}

/* Milliseconds since start. */
static unsigned ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/*
 * regcomp in a child, killed once it has run timeout_ms: 0 when it finished (compiled or
 * refused: the caller compiles it again, to keep it or say why), -ETIME when it did not,
 * another -errno when no child could be made. *spent_ms gets the time it took.
 */
static int trial_compile(const char *pattern, int flags, unsigned timeout_ms, unsigned *spent_ms)
{
	const struct timespec pause = { 0, 200 * 1000 };
	struct timespec start;
	int status, ret = 0;
	pid_t child, done;

	clock_gettime(CLOCK_MONOTONIC, &start);
	child = fork();
	if (child < 0)
		return -errno;
	if (child == 0) {
		regex_t re;

		/* should the parent die before it kills us */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(regcomp(&re, pattern, REG_EXTENDED | flags) ? 1 : 0);
	}
	while ((done = waitpid(child, &status, WNOHANG)) == 0 && ms_since(&start) < timeout_ms)
		nanosleep(&pause, NULL);
	if (done == 0) {
		kill(child, SIGKILL);
		while (waitpid(child, &status, 0) < 0 && errno == EINTR)
			;
		ret = -ETIME;
	} else if (done < 0 || !WIFEXITED(status)) {
		ret = -ECHILD;	/* killed by something else: say it could not be tried */
	}
	*spent_ms = ms_since(&start);
	return ret;
}

/*
 * Whether a pattern that nests repetitions compiled in a child within what *trial_ms_left
 * allows (lowered by what it took); false with why written when it did not, or could not be
 * tried.
 */
static bool compiles_in_time(const char *pattern, int flags, unsigned *trial_ms_left,
			     char *why, size_t why_len)
{
	unsigned spent_ms = 0, timeout_ms;
	int ret;

	if (!*trial_ms_left) {
		snprintf(why, why_len, "not tried: the regexes before it took all the time allowed");
		return false;
	}
	timeout_ms = *trial_ms_left < REGEX_TRIAL_MS ? *trial_ms_left : REGEX_TRIAL_MS;
	ret = trial_compile(pattern, flags, timeout_ms, &spent_ms);
	*trial_ms_left -= spent_ms < *trial_ms_left ? spent_ms : *trial_ms_left;
	if (ret == -ETIME)
		snprintf(why, why_len, "takes more than %u ms to compile", timeout_ms);
	else if (ret)
		snprintf(why, why_len, "could not be tried: %s", strerror(-ret));
	return ret == 0;
}

int bounded_regcomp(regex_t *re, const char *pattern, int flags, unsigned *trial_ms_left,
		    char *why, size_t why_len)
{
	const char *reason = NULL;
	size_t length = 0;
	bool nested;
	long size;
	int ret;

	while (pattern[length] && length <= REGEX_MAX_LENGTH)
		length++;
	if (length > REGEX_MAX_LENGTH) {
		snprintf(why, why_len, "longer than %d bytes", REGEX_MAX_LENGTH);
		return -1;
	}
	size = regex_expanded_size(pattern, &nested, &reason);
	if (size < 0) {
		snprintf(why, why_len, "%s", reason);
		return -1;
	}
	if (size > REGEX_MAX_EXPANDED) {
		snprintf(why, why_len, "its repetitions expand to more than %d atoms",
			 REGEX_MAX_EXPANDED);
		return -1;
	}
	if (nested && !compiles_in_time(pattern, flags, trial_ms_left, why, why_len))
		return -1;
	ret = regcomp(re, pattern, REG_EXTENDED | flags);
	if (ret) {
		regerror(ret, re, why, why_len);
		return -1;
	}
	return 0;
}
