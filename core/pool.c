/* A small shared thread pool: vt_parallel_for hands out task indices from an atomic counter to
 * the pool's workers and the calling thread. One job runs at a time; concurrent callers queue
 * on a mutex. Calls from inside a task run inline (no deadlock on nesting).
 *
 * Hand-off: the job lives in one static slot; the caller publishes it by one atomic word,
 * generation << 9 | the number of workers that take part, so a worker that does not take part
 * never reads the slot (which the next job may be rewriting). Idle workers spin on that word,
 * yielding the CPU each turn, for up to VT_POOL_SPIN_US microseconds (default 100; 0: never)
 * before sleeping on a condition variable, and the caller spins as long for the workers to
 * finish before sleeping: a run of small jobs (a decode step's matrix products, some
 * microseconds each) then hands off through a cache line instead of a futex wake-up each. Sleeping
 * is Dekker-style: each side stores its own word (sequentially consistent) and then reads the
 * other's, so a wake-up is never lost. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vtstore/core.h"

#define VT_POOL_MAX      256 /* < 512: the published word's low 9 bits */
#define VT_POOL_SPIN_DEF 100 /* microseconds */

typedef struct job {
    vt_task_fn fn;
    void *ctx;
    uint64_t n;
    _Atomic uint64_t next;
    _Atomic int err;
} job;

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t submit_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_work = PTHREAD_COND_INITIALIZER, cv_done = PTHREAD_COND_INITIALIZER;
static job slot;                /* the current job; written by the caller holding submit_mu */
static uint64_t generation;     /* the last published; under submit_mu */
static _Atomic uint64_t pub;    /* generation << 9 | workers taking part */
static _Atomic int n_finished;  /* workers done with the current job */
static _Atomic int n_sleeping;  /* workers waiting on cv_work */
static _Atomic int caller_wait; /* the caller waits on cv_done */
static int n_threads;
static long spin_ns;
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

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Spin up to spin_ns until done(arg) holds; 1 when it does. Each turn yields the CPU
 * (sched_yield): alone on its core that returns at once, but with more runnable threads than
 * cores (another process's, or VT_THREADS above the CPU count) the thread we wait for gets to
 * run. A pause loop there cost each hand-off a scheduler time slice: two 2-thread decodes on 2
 * cores fell from 175 to 21 tokens/s each (BENCHMARKS.md). The clock is read every 16 turns,
 * from before the first. */
static int spin_until(int (*done)(uint64_t), uint64_t arg) {
    if (spin_ns <= 0) return done(arg);
    const long t0 = now_ns();
    for (unsigned i = 1;; i++) {
        if (done(arg)) return 1;
        sched_yield();
        if (!(i & 15) && now_ns() - t0 > spin_ns) return done(arg);
    }
}

/* The two waits' conditions. Sequentially consistent loads: after a side's own store (a worker's
 * n_sleeping, the caller's caller_wait), the Dekker argument needs the other side's word read in
 * the single total order; an acquire load may still see the old value (AArch64 LDAPR can pass an
 * earlier STLR), which would lose a wake-up. On x86 they are plain loads either way. */
static int pub_moved(uint64_t seen) { /* a generation other than @p seen is published */
    return atomic_load(&pub) >> 9 != seen;
}

static int all_finished(uint64_t nw) {
    return (uint64_t)atomic_load(&n_finished) >= nw;
}

static void *worker(void *arg) {
    const int tid = (int)(intptr_t)arg;
    uint64_t seen = 0; /* the first job is generation 1 */
    for (;;) {
        if (!spin_until(pub_moved, seen)) {
            pthread_mutex_lock(&mu);
            atomic_fetch_add(&n_sleeping, 1); /* then read pub: see it moved, or be woken */
            while (!pub_moved(seen)) pthread_cond_wait(&cv_work, &mu);
            atomic_fetch_sub(&n_sleeping, 1);
            pthread_mutex_unlock(&mu);
        }
        const uint64_t p = atomic_load(&pub);
        seen = p >> 9;
        if ((uint64_t)tid > (p & 511u)) continue; /* not taking part: the slot is not ours */
        run_tasks(&slot, tid);
        atomic_fetch_add(&n_finished, 1); /* then read caller_wait: it sees this, or is woken */
        if (atomic_load(&caller_wait)) {
            pthread_mutex_lock(&mu);
            pthread_cond_broadcast(&cv_done);
            pthread_mutex_unlock(&mu);
        }
    }
    return NULL;
}

int vt_pool_spin_us(void) {
    const char *e = getenv("VT_POOL_SPIN_US");
    long us = e && *e ? strtol(e, NULL, 10) : VT_POOL_SPIN_DEF;
    return us < 0 ? 0 : us > 1000000 ? 1000000 : (int)us;
}

static void pool_init(void) {
    spin_ns = vt_pool_spin_us() * 1000L;
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
    int nw = nthreads - 1;
    if (nw > n_threads) nw = n_threads;
    if ((uint64_t)nw > n - 1) nw = (int)(n - 1);
    pthread_mutex_lock(&submit_mu);
    slot.fn = fn;
    slot.ctx = ctx;
    slot.n = n;
    atomic_store_explicit(&slot.next, 0, memory_order_relaxed);
    atomic_store_explicit(&slot.err, 0, memory_order_relaxed);
    atomic_store_explicit(&n_finished, 0, memory_order_relaxed);
    generation++;
    atomic_store(&pub, generation << 9 | (uint64_t)nw); /* then read n_sleeping */
    if (nw && atomic_load(&n_sleeping)) {
        pthread_mutex_lock(&mu);
        pthread_cond_broadcast(&cv_work);
        pthread_mutex_unlock(&mu);
    }
    run_tasks(&slot, 0);
    /* wait until every worker taking part has finished (the others never touch the slot) */
    if (!spin_until(all_finished, (uint64_t)nw)) {
        pthread_mutex_lock(&mu);
        atomic_store(&caller_wait, 1); /* then read n_finished */
        while (!all_finished((uint64_t)nw)) pthread_cond_wait(&cv_done, &mu);
        atomic_store(&caller_wait, 0);
        pthread_mutex_unlock(&mu);
    }
    const int rc = atomic_load(&slot.err);
    pthread_mutex_unlock(&submit_mu);
    return rc;
}
