// SPDX-License-Identifier: GPL-2.0
/*
 * Detaching in the background (see detach.h): one worker thread, one queue of links kept as
 * a growable array under a mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <bpf/libbpf.h>

#include "array.h"
#include "detach.h"

struct detacher {
	pthread_t worker;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct bpf_link **queue;
	size_t n, cap;
	size_t done;
	bool stopping;
};

static void *detach_worker(void *arg)
{
	struct detacher *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct bpf_link *link;

		while (!d->n && !d->stopping)
			pthread_cond_wait(&d->wake, &d->lock);
		if (!d->n)
			break;
		link = d->queue[--d->n];
		pthread_mutex_unlock(&d->lock);
		bpf_link__destroy(link);
		pthread_mutex_lock(&d->lock);
		d->done++;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int detacher_start(struct detacher **out)
{
	struct detacher *d = calloc(1, sizeof(*d));
	int ret;

	*out = NULL;
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->wake, NULL);
	ret = pthread_create(&d->worker, NULL, detach_worker, d);
	if (ret) {
		free(d);
		return -ret;
	}
	*out = d;
	return 0;
}

void detacher_put(struct detacher *d, struct bpf_link *link)
{
	struct bpf_link **grown;

	if (!link)
		return;
	if (!d) {
		bpf_link__destroy(link);
		return;
	}
	pthread_mutex_lock(&d->lock);
	grown = array_room_for(d->queue, &d->cap, d->n, sizeof(*grown));
	if (grown) {
		d->queue = grown;
		d->queue[d->n++] = link;
		pthread_cond_signal(&d->wake);
	}
	pthread_mutex_unlock(&d->lock);
	if (!grown)
		bpf_link__destroy(link);
}

size_t detacher_done(struct detacher *d)
{
	size_t done;

	pthread_mutex_lock(&d->lock);
	done = d->done;
	pthread_mutex_unlock(&d->lock);
	return done;
}

void detacher_stop(struct detacher *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	pthread_cond_signal(&d->wake);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->worker, NULL);
	free(d->queue);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->wake);
	free(d);
}
