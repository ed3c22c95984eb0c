/* Thread pool: every index runs exactly once, errors propagate, nesting runs inline; runs of
 * tiny jobs back to back (the workers' spinning hand-off), jobs with pauses longer than the spin
 * between them (workers asleep, woken), and several threads submitting at once (the one job
 * slot reused), each checked index by index. ctest runs it with the default threads, with
 * VT_THREADS=8 (workers that do not take part in a job of fewer threads), with
 * VT_POOL_SPIN_US=0 (every hand-off through the condition variables), and under TSan. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "vt_test.h"
#include "vtstore/core.h"

static _Atomic int hits[10000];

static int mark(void *ctx, uint64_t i, int tid) {
    (void)ctx;
    (void)tid;
    atomic_fetch_add(&hits[i], 1);
    return 0;
}
static int fail_at_500(void *ctx, uint64_t i, int tid) {
    (void)ctx;
    (void)tid;
    return i == 500 ? -EIO : 0;
}
static int nested(void *ctx, uint64_t i, int tid) {
    (void)tid;
    (void)i;
    return vt_parallel_for(10, mark, ctx, 0);
}

/* a submitter's own job: out[i] = base + i, and a task count per thread id */
typedef struct own {
    uint64_t base;
    uint64_t *out;
    _Atomic int tids[257];
} own;

static int fill(void *ctx, uint64_t i, int tid) {
    own *o = ctx;
    if (i % 8 == 5) usleep(20); /* a slow task: the call must still wait for it */
    o->out[i] = o->base + i;
    if (tid < 0 || tid > 256) return -EINVAL;
    atomic_fetch_add(&o->tids[tid], 1);
    return 0;
}

enum { SUB_JOBS = 1500, SUB_MAX_N = 64 };

/* Submit SUB_JOBS jobs of 1..SUB_MAX_N tasks on 1..4 threads; check each: 0 on success. */
static void *submitter(void *arg) {
    const uint64_t seed = (uint64_t)(uintptr_t)arg;
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1, out[SUB_MAX_N];
    intptr_t bad = 0;
    for (int k = 0; k < SUB_JOBS; k++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        const uint64_t n = 1 + s % SUB_MAX_N;
        own o = {.base = seed << 32 | (uint64_t)k << 8, .out = out};
        for (int t = 0; t < 257; t++) atomic_init(&o.tids[t], 0);
        memset(out, 0xa5, sizeof out);
        if (vt_parallel_for(n, fill, &o, 1 + (int)(s >> 20) % 4)) bad++;
        for (uint64_t i = 0; i < n; i++) bad += out[i] != o.base + i;
        int total = 0;
        for (int t = 0; t < 257; t++) total += atomic_load(&o.tids[t]);
        bad += total != (int)n;
    }
    return (void *)bad;
}

static void check_all_once(int round, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        CHECKF(hits[i] == 1, "round %d index %llu ran %d times", round, (unsigned long long)i,
               hits[i]);
}

int main(void) {
    for (int round = 0; round < 50; round++) {
        memset(hits, 0, sizeof hits);
        int nt = 1 + round % 4;
        CHECK_RC(vt_parallel_for(10000, mark, NULL, nt));
        check_all_once(round, 10000);
    }
    CHECK(vt_parallel_for(1000, fail_at_500, NULL, 0) == -EIO);
    memset(hits, 0, sizeof hits);
    CHECK_RC(vt_parallel_for(20, nested, NULL, 0));
    for (int i = 0; i < 10; i++) CHECK(hits[i] == 20);
    CHECK(vt_parallel_for(0, mark, NULL, 0) == 0);
    /* tiny jobs back to back, then with pauses of 0.3 ms (above the default 0.1 ms spin) */
    for (int round = 0; round < 4000 && vt_test_failures < 10; round++) {
        const uint64_t n = 2 + (uint64_t)round % 31;
        memset(hits, 0, n * sizeof hits[0]);
        CHECK_RC(vt_parallel_for(n, mark, NULL, 0));
        check_all_once(round, n);
        if (round >= 3800) usleep(300);
    }
    /* four submitters at once: the calls queue, each gets its own results */
    pthread_t th[4];
    for (uintptr_t t = 0; t < 4; t++)
        CHECK(pthread_create(&th[t], NULL, submitter, (void *)(t + 1)) == 0);
    for (int t = 0; t < 4; t++) {
        void *bad = NULL;
        pthread_join(th[t], &bad);
        CHECKF(bad == NULL, "submitter %d: %ld wrong results", t, (long)(intptr_t)bad);
    }
    return vt_test_done("test_pool");
}
