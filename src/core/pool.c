/* pool.c - worker threads that sleep while idle (contract in pool.h). */
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>

#define POOL_MAX 64

struct rf_pool {
    int nw; /* workers */
    pthread_t th[POOL_MAX];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    void (*fn)(void *ctx, int i);
    void *ctx;
    int n, next, busy; /* tasks of the current run, next to start, started and not finished */
    unsigned gen;      /* run counter */
    int stop;
};

/* Run tasks of the current run until none is left; with mu held. */
static void drain(rf_pool *p)
{
    while (p->next < p->n) {
        int i = p->next++;
        p->busy++;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, i);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0 && p->next >= p->n) pthread_cond_broadcast(&p->done);
    }
}

static void *worker(void *arg)
{
    rf_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    unsigned seen = p->gen;
    for (;;) {
        while (p->gen == seen && !p->stop) pthread_cond_wait(&p->go, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        drain(p);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

rf_pool *rf_pool_create(int threads)
{
    if (threads <= 1) return NULL;
    if (threads > POOL_MAX) threads = POOL_MAX;
    rf_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    if (pthread_mutex_init(&p->mu, NULL)) goto fail_mu;
    if (pthread_cond_init(&p->go, NULL)) goto fail_go;
    if (pthread_cond_init(&p->done, NULL)) goto fail_done;
    for (int i = 0; i < threads - 1; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p)) break;
        p->nw++;
    }
    if (p->nw) return p;
    pthread_cond_destroy(&p->done);
fail_done:
    pthread_cond_destroy(&p->go);
fail_go:
    pthread_mutex_destroy(&p->mu);
fail_mu:
    free(p);
    return NULL;
}

void rf_pool_free(rf_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nw; i++) pthread_join(p->th[i], NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->go);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void rf_pool_run(rf_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx)
{
    if (!p || n <= 1) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->next = 0;
    p->busy = 0;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    drain(p);
    while (p->busy > 0 || p->next < p->n) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
