/* A small shared thread pool: vt_parallel_for hands out task indices from an atomic counter to
 * the pool's workers and the calling thread. One job runs at a time; concurrent callers queue
 * on a mutex. Calls from inside a task run inline (no deadlock on nesting). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "vtstore/core.h"

#define VT_POOL_MAX 256

typedef struct job {
    vt_task_fn fn;
    void *ctx;
    uint64_t n;
    _Atomic uint64_t next;
    _Atomic int err;
    int nworkers; /* pool threads that take part (caller excluded) */
} job;

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t submit_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_work = PTHREAD_COND_INITIALIZER, cv_done = PTHREAD_COND_INITIALIZER;
static job *current;
static uint64_t generation;
static int n_threads, n_started, n_finished;
static _Thread_local int in_task;

int vt_default_threads(void) {
    const char *e = getenv("VT_THREADS");
    long n = e ? strtol(e, NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    if (n > VT_POOL_MAX) n = VT_POOL_MAX;
    return (int)n;
}

static void run_tasks(job *j, int tid) {
    in_task = 1;
    for (;;) {
        if (atomic_load_explicit(&j->err, memory_order_relaxed)) break;
        uint64_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        int rc = j->fn(j->ctx, i, tid);
        if (rc) {
            int zero = 0;
            atomic_compare_exchange_strong(&j->err, &zero, rc);
        }
    }
    in_task = 0;
}

static void *worker(void *arg) {
    int tid = (int)(intptr_t)arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&mu);
    for (;;) {
        while (generation == seen) pthread_cond_wait(&cv_work, &mu);
        seen = generation;
        job *j = current;
        if (!j || tid > j->nworkers) continue;
        n_started++;
        pthread_mutex_unlock(&mu);
        run_tasks(j, tid);
        pthread_mutex_lock(&mu);
        n_finished++;
        pthread_cond_broadcast(&cv_done);
    }
    return NULL;
}

static void pool_init(void) {
    int n = vt_default_threads() - 1; /* the caller is a worker too */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, worker, (void *)(intptr_t)(i + 1))) break;
        n_threads++;
    }
    pthread_attr_destroy(&attr);
}

int vt_parallel_for(uint64_t n, vt_task_fn fn, void *ctx, int nthreads) {
    if (nthreads <= 0) nthreads = vt_default_threads();
    if (n == 0) return 0;
    if (nthreads == 1 || n == 1 || in_task) {
        int was = in_task;
        in_task = 1;
        int rc = 0;
        for (uint64_t i = 0; i < n && !rc; i++) rc = fn(ctx, i, 0);
        in_task = was;
        return rc;
    }
    pthread_once(&pool_once, pool_init);
    job j = {.fn = fn, .ctx = ctx, .n = n, .nworkers = nthreads - 1};
    if (j.nworkers > n_threads) j.nworkers = n_threads;
    if ((uint64_t)j.nworkers > n - 1) j.nworkers = (int)(n - 1);
    atomic_init(&j.next, 0);
    atomic_init(&j.err, 0);
    pthread_mutex_lock(&submit_mu);
    pthread_mutex_lock(&mu);
    current = &j;
    n_started = n_finished = 0;
    generation++;
    pthread_cond_broadcast(&cv_work);
    pthread_mutex_unlock(&mu);
    run_tasks(&j, 0);
    pthread_mutex_lock(&mu);
    /* wait until every worker that could pick this job has either finished it or skipped it:
     * workers with tid > nworkers skip; the others must report */
    while (n_finished < j.nworkers) pthread_cond_wait(&cv_done, &mu);
    current = NULL;
    pthread_mutex_unlock(&mu);
    pthread_mutex_unlock(&submit_mu);
    return atomic_load(&j.err);
}
