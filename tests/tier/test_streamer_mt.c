/* Concurrent acquire/release from 4 threads (cyclic schedule and random access, with and without
 * a device tier): every handle holds the right bytes while held. Also run under ThreadSanitizer
 * (label tsan). */
#include <pthread.h>

#include "tier_util.h"

static tu_store ts;
static vt_streamer *st;
static int mode_cyclic;

typedef struct {
    uint64_t seed;
    int bad, errs;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    uint64_t x = a->seed;
    for (int k = 0; k < 60; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int i = mode_cyclic ? k % ts.n : (int)(x % (uint64_t)ts.n);
        vt_weight w;
        int rc = vt_streamer_acquire(st, ts.names[i], &w);
        if (rc) {
            a->errs++;
            continue;
        }
        if (!tu_match(&ts, i, &w)) a->bad++;
        if (vt_streamer_release(st, &w)) a->errs++;
    }
    return NULL;
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("streamer_mt", dir, sizeof dir);
    tu_make(&ts, dir, 16, 16, 64, 256, 16384, 1);
    uint64_t model = 0;
    for (int i = 0; i < ts.n; i++) model += ts.bytes[i];
    const char *names[64];
    for (int i = 0; i < ts.n; i++) names[i] = ts.names[i];
    for (int cfg = 0; cfg < 4; cfg++) {
        mode_cyclic = cfg & 1;
        /* 4 threads may hold a handle each: ring of 8 slots */
        vt_tier_config c = {.ram_bytes = model / 2 + (4u << 20),
                            .vram_bytes = (cfg & 2) ? model / 3 + (4u << 20) : 0,
                            .prefetch = 2,
                            .ring_slots = 8};
        CHECK_RC(vt_streamer_open(ts.s, &c, &st));
        if (!st) continue;
        if (mode_cyclic) CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC));
        pthread_t th[4];
        worker_arg a[4];
        for (int t = 0; t < 4; t++) {
            a[t] = (worker_arg){.seed = vt_rand_u64() | 1};
            pthread_create(&th[t], NULL, worker, &a[t]);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            CHECKF(!a[t].bad && !a[t].errs, "cfg %d thread %d: %d wrong, %d errors (%s)", cfg, t,
                   a[t].bad, a[t].errs, vt_streamer_errmsg(st));
        }
        vt_streamer_stats s;
        CHECK_RC(vt_streamer_get_stats(st, &s));
        CHECK(s.acquires == 240);
        vt_streamer_close(st);
        st = NULL;
    }
    tu_free(&ts);
    return vt_test_done("test_streamer_mt");
}
