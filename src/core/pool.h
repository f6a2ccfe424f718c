/* pool.h - a small pool of worker threads that sleep while idle (internal; not installed).
 *
 * The text loader runs a parallel step per round of text (parse the pieces, copy them out, read
 * the next round). OpenMP's idle threads spin between such steps, taking the cores that the
 * helper threads (the decompressor of a .gz/.zst input, the cache writer) need; these workers
 * wait on a condition variable instead. rf_pool_run returns when every task is done; the
 * calling thread runs tasks too. */
#ifndef RESFLOW_POOL_H
#define RESFLOW_POOL_H

typedef struct rf_pool rf_pool;

/* A pool for `threads` threads in all (the caller included): threads - 1 workers. NULL when
 * threads <= 1 or the workers cannot be started (rf_pool_run then runs the tasks inline). */
rf_pool *rf_pool_create(int threads);
void rf_pool_free(rf_pool *p);
/* fn(ctx, i) for i in [0, n), in any order and on any thread; returns when all are done. */
void rf_pool_run(rf_pool *p, int n, void (*fn)(void *ctx, int i), void *ctx);

/* A single helper thread (the decompressor, the input hasher, the cache writer) with its own
 * mutex and condition variable. rf_thread_start_: 1 when fn(arg) runs, else 0 with nothing
 * left initialised (the caller works without the thread). rf_thread_stop_: *stop = 1 under the
 * mutex, wake the thread, join it, destroy the mutex and condition. */
#include <pthread.h>

static inline int rf_thread_start_(pthread_t *th, pthread_mutex_t *mu, pthread_cond_t *cv, void *(*fn)(void *),
                                   void *arg)
{
    if (pthread_mutex_init(mu, NULL)) return 0;
    if (!pthread_cond_init(cv, NULL)) {
        if (!pthread_create(th, NULL, fn, arg)) return 1;
        pthread_cond_destroy(cv);
    }
    pthread_mutex_destroy(mu);
    return 0;
}

static inline void rf_thread_stop_(pthread_t th, pthread_mutex_t *mu, pthread_cond_t *cv, int *stop)
{
    pthread_mutex_lock(mu);
    *stop = 1;
    pthread_cond_broadcast(cv);
    pthread_mutex_unlock(mu);
    pthread_join(th, NULL);
    pthread_cond_destroy(cv);
    pthread_mutex_destroy(mu);
}

#endif
