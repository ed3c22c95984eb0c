/* GPU: stream a store through the RAM tier into real device memory and compare the device bytes,
 * copied back, with the written ones: cyclic passes with VRAM pins and a ring; random access
 * (S3-FIFO); 4 threads acquiring at once (copies queued by the finisher thread, waited for by
 * each acquirer); two handles held at once; a tensor larger than a slot streamed in parts
 * (chunkwise). Zstd chunks on the odd tensors. Skipped (77) without CUDA or a GPU, unless
 * VT_TEST_EMULATED_DEVICE=1 (test_streamer_gpu_emulated): then the same checks run against the
 * device tier emulated in host memory, so the test's own logic runs in CPU-only CI too. */
#include <pthread.h>

#include "tier_util.h"
#include "tiering/tier_internal.h"

static tu_store ts;
static uint64_t maxb;
static int gpu; /* 0: VT_TEST_EMULATED_DEVICE=1 run on the host-memory device tier */

/* 1 if the handle is in the device tier's memory (the GPU's, or host memory when emulated) and
 * holds exactly the reference rows of tensor i (tu_match copies device handles back). */
static int dev_match(int i, const vt_weight *w) {
    return w->location == (gpu ? VT_LOC_DEVICE : VT_LOC_HOST) && tu_match(&ts, i, w);
}

typedef struct {
    vt_streamer *st;
    uint64_t seed;
    int bad, errs;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    uint64_t x = a->seed | 1;
    for (int k = 0; k < 48; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int i = (int)(x % (uint64_t)ts.n);
        vt_weight w;
        if (vt_streamer_acquire(a->st, ts.names[i], &w)) {
            a->errs++;
            continue;
        }
        a->bad += !dev_match(i, &w);
        if (vt_streamer_release(a->st, &w)) a->errs++;
    }
    return NULL;
}

static vt_streamer *open_plan(vt_tier_config *c, vt_schedule mode) {
    vt_streamer *st = NULL;
    int rc = vt_streamer_open(ts.s, c, &st);
    CHECKF(rc == 0, "open: %s", vt_last_error());
    if (rc) return NULL;
    vt_streamer_stats s;
    CHECK_RC(vt_streamer_get_stats(st, &s));
    CHECK(s.device_is_gpu == gpu);
    const char *names[64];
    for (int i = 0; i < ts.n; i++) names[i] = ts.names[i];
    CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, mode));
    return st;
}

int main(void) {
    vt_test_seed();
    gpu = vt_tcuda_available(0);
    const char *emu = getenv("VT_TEST_EMULATED_DEVICE");
    if (!gpu && !(emu && *emu == '1'))
        TEST_SKIP("no CUDA device (or built without CUDA); VT_TEST_EMULATED_DEVICE=1 runs the "
                  "same checks on the host-memory device tier");
    char dir[4096];
    vt_test_tmpdir("streamer_gpu", dir, sizeof dir);
    tu_make(&ts, dir, 16, 32, 96, 512, 32768, 1);
    uint64_t model = 0;
    int li = 0;
    for (int i = 0; i < ts.n; i++) {
        model += ts.bytes[i];
        if (ts.bytes[i] > maxb) maxb = ts.bytes[i], li = i;
    }

    /* cyclic passes: pins, ring, prefetch */
    vt_tier_config c = {
        .vram_bytes = model / 3 + 4 * maxb, .ram_bytes = model / 3 + 4 * maxb, .ring_slots = 4};
    vt_streamer *st = open_plan(&c, VT_SCHEDULE_CYCLIC);
    for (int p = 0; st && p < 3; p++)
        for (int i = 0; i < ts.n; i++) {
            vt_weight w;
            int rc = vt_streamer_acquire(st, ts.names[i], &w);
            CHECK_RC(rc);
            if (rc) continue;
            CHECK(w.bytes == ts.bytes[i]);
            CHECKF(dev_match(i, &w), "pass %d %s: device bytes differ", p, ts.names[i]);
            /* two handles at once: the next tensor while this one is held */
            if (i + 1 < ts.n) {
                vt_weight w2;
                CHECK_RC(vt_streamer_acquire(st, ts.names[i + 1], &w2));
                CHECKF(dev_match(i + 1, &w2), "pass %d %s held with %s", p, ts.names[i + 1],
                       ts.names[i]);
                CHECKF(dev_match(i, &w), "pass %d %s changed while %s was acquired", p, ts.names[i],
                       ts.names[i + 1]);
                CHECK_RC(vt_streamer_release(st, &w2));
            }
            CHECK_RC(vt_streamer_release(st, &w));
        }
    if (st) {
        vt_streamer_stats s;
        CHECK_RC(vt_streamer_get_stats(st, &s));
        CHECK(s.vram.hits > 0 && s.vram.bytes_in > 0);
        printf("cyclic: vram hits %llu misses %llu, H2D %.3f GB/s\n",
               (unsigned long long)s.vram.hits, (unsigned long long)s.vram.misses, s.vram.gbps);
        vt_streamer_close(st);
    }

    /* random access, one thread then four */
    st = open_plan(&c, VT_SCHEDULE_RANDOM);
    if (st) {
        worker_arg a[4];
        memset(a, 0, sizeof a);
        a[0].st = st;
        a[0].seed = vt_rand_u64();
        worker(&a[0]);
        CHECKF(a[0].bad == 0 && a[0].errs == 0, "random, 1 thread: %d wrong, %d errors", a[0].bad,
               a[0].errs);
        pthread_t th[4];
        for (int t = 0; t < 4; t++) {
            a[t] = (worker_arg){st, vt_rand_u64(), 0, 0};
            CHECK(pthread_create(&th[t], NULL, worker, &a[t]) == 0);
        }
        for (int t = 0; t < 4; t++) {
            pthread_join(th[t], NULL);
            CHECKF(a[t].bad == 0 && a[t].errs == 0, "random, thread %d: %d wrong, %d errors", t,
                   a[t].bad, a[t].errs);
        }
        vt_streamer_stats s;
        CHECK_RC(vt_streamer_get_stats(st, &s));
        printf("random: vram hits %llu misses %llu\n", (unsigned long long)s.vram.hits,
               (unsigned long long)s.vram.misses);
        vt_streamer_close(st);
    }

    /* a tensor larger than a slot, in parts */
    vt_tier_config small = {.vram_bytes = ts.bytes[li] * 3 / 4,
                            .ram_bytes = ts.bytes[li] * 3 / 4,
                            .ring_slots = 2,
                            .chunkwise = 1};
    st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &small, &st));
    if (st) {
        uint64_t np = 0;
        CHECK_RC(vt_streamer_parts(st, ts.names[li], &np));
        CHECK(np > 1);
        const char *one[1] = {ts.names[li]};
        CHECK_RC(vt_streamer_plan(st, one, 1, VT_SCHEDULE_CYCLIC));
        for (int pass = 0; pass < 2; pass++) {
            uint64_t next_row = 0;
            for (uint64_t p = 0; p < np; p++) {
                vt_weight w;
                int rc = vt_streamer_acquire_part(st, ts.names[li], p, &w);
                CHECK_RC(rc);
                if (rc) break;
                CHECK(w.row0 == next_row && w.rows > 0);
                CHECKF(dev_match(li, &w), "%s part %llu: device bytes differ", ts.names[li],
                       (unsigned long long)p);
                next_row += w.rows;
                CHECK_RC(vt_streamer_release(st, &w));
            }
            CHECK(next_row == ts.rows[li]);
        }
        vt_streamer_close(st);
    }
    tu_free(&ts);
    return vt_test_done("test_streamer_gpu");
}
