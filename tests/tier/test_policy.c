/* Tier policies on synthetic schedules: sub-allocator against a bitmap, the cyclic planner's
 * exact pinned counts and invariants, an LRU simulation showing 0 hits on a loop larger than the
 * cache where the plan hits on every pinned item, and S3-FIFO scan resistance with exact hits. */
#include <errno.h>
#include <stdlib.h>

#include "tiering/tier_internal.h"
#include "vt_test.h"

/* ---- sub-allocator vs a page bitmap ---- */
static void test_suballoc(void) {
    enum { PAGES = 512 };
    vt_suballoc a;
    CHECK_RC(vt_suballoc_init(&a, (uint64_t)PAGES * 4096 + 100)); /* rounded down */
    CHECK(a.size == (uint64_t)PAGES * 4096);
    unsigned char used[PAGES] = {0};
    struct {
        uint64_t off, len;
    } live[256];
    int nlive = 0;
    for (int step = 0; step < 4000; step++) {
        if (nlive < 256 && (vt_rand_u64() % 2 || !nlive)) {
            uint64_t len = 1 + vt_rand_u64() % (12 * 4096);
            uint64_t off;
            int rc = vt_suballoc_alloc(&a, len, &off);
            uint64_t pages = (len + 4095) / 4096;
            /* first fit: it fails only if no run of free pages is long enough */
            uint64_t best = 0, run = 0, first = UINT64_MAX;
            for (int p = 0; p < PAGES; p++) {
                run = used[p] ? 0 : run + 1;
                if (run > best) best = run;
                if (run == pages && first == UINT64_MAX) first = (uint64_t)p + 1 - pages;
            }
            if (rc == 0) {
                CHECK(off % 4096 == 0 && off / 4096 + pages <= PAGES);
                CHECKF(off / 4096 == first, "first fit: got page %llu, first free run at %llu",
                       (unsigned long long)(off / 4096), (unsigned long long)first);
                for (uint64_t p = off / 4096; p < off / 4096 + pages; p++) {
                    CHECK(!used[p]);
                    used[p] = 1;
                }
                live[nlive].off = off;
                live[nlive].len = len;
                nlive++;
            } else {
                CHECK(rc == -ENOSPC);
                CHECK(best < pages);
            }
        } else {
            int i = (int)(vt_rand_u64() % (uint64_t)nlive);
            CHECK_RC(vt_suballoc_free(&a, live[i].off, live[i].len));
            for (uint64_t p = live[i].off / 4096; p < (live[i].off + live[i].len + 4095) / 4096;
                 p++)
                used[p] = 0;
            live[i] = live[--nlive];
        }
        uint64_t u = 0;
        for (int p = 0; p < PAGES; p++) u += used[p];
        CHECK(a.used == u * 4096);
    }
    while (nlive) {
        CHECK_RC(vt_suballoc_free(&a, live[nlive - 1].off, live[nlive - 1].len));
        nlive--;
    }
    CHECK(a.nfree == 1 && a.used == 0 && vt_suballoc_largest(&a) == a.size); /* fully coalesced */
    vt_suballoc_fini(&a);
}

/* ---- LRU simulation with a byte budget: hits over `passes` passes of a cyclic schedule ---- */
static uint64_t lru_hits(const uint64_t *sz, size_t n, uint64_t cap, int passes, int skip_first) {
    uint64_t *stamp = calloc(n, sizeof *stamp); /* 0 = not resident, else last use time */
    uint64_t used = 0, t = 0, hits = 0;
    for (int p = 0; p < passes; p++)
        for (size_t i = 0; i < n; i++) {
            t++;
            if (stamp[i]) {
                if (!(skip_first && p == 0)) hits++;
                stamp[i] = t;
                continue;
            }
            if (sz[i] > cap) continue;
            while (used + sz[i] > cap) { /* evict the least recently used */
                size_t v = n;
                for (size_t j = 0; j < n; j++)
                    if (stamp[j] && (v == n || stamp[j] < stamp[v])) v = j;
                stamp[v] = 0;
                used -= sz[v];
            }
            stamp[i] = t;
            used += sz[i];
        }
    free(stamp);
    return hits;
}

static void test_planner_uniform(void) {
    for (int trial = 0; trial < 50; trial++) {
        size_t n = 4 + vt_rand_u64() % 60;
        uint64_t s = 4096 * (1 + vt_rand_u64() % 64);
        uint32_t k = 2 + (uint32_t)(vt_rand_u64() % 4);
        uint64_t model = n * s;
        uint64_t ram = (uint64_t)(vt_rand_uniform() * (double)model); /* smaller than the model */
        if (ram < k * s) ram = k * s;
        vt_plan_item *it = calloc(n, sizeof *it);
        uint64_t *sz = calloc(n, sizeof *sz);
        for (size_t i = 0; i < n; i++) it[i].bytes = sz[i] = s;
        vt_plan_config c = {.vram_bytes = 0, .ram_bytes = ram, .slots = k};
        vt_plan_result r;
        CHECK_RC(vt_plan_cyclic(&c, it, n, &r));
        /* exact: all fit, or (budget - k slots) / size pinned */
        uint64_t expect = model <= ram ? n : (ram - k * s) / s;
        if (expect > n) expect = n;
        CHECKF(r.ram_pinned_n == expect, "n=%zu s=%llu k=%u ram=%llu: pinned %llu, expected %llu",
               n, (unsigned long long)s, k, (unsigned long long)ram,
               (unsigned long long)r.ram_pinned_n, (unsigned long long)expect);
        uint64_t pinned = 0;
        for (size_t i = 0; i < n; i++) pinned += it[i].place == VT_PLACE_RAM_PIN;
        CHECK(pinned == expect);
        /* the pinned policy hits on every pinned item from the second pass on; LRU never does */
        int passes = 4;
        uint64_t plan_hits = pinned * (uint64_t)(passes - 1);
        uint64_t lh = lru_hits(sz, n, ram, passes, 1);
        if (model > ram) {
            CHECKF(lh == 0, "LRU got %llu hits on a loop larger than the cache",
                   (unsigned long long)lh);
            /* per-pass byte hit rate >= pinned / model bytes */
            CHECK((double)pinned * s / model >= (double)r.ram_pinned / model - 1e-12);
            if (ram >= (k + 1) * s) CHECK(plan_hits > 0);
        } else {
            CHECK(lh == n * (uint64_t)(passes - 1));
            CHECK(plan_hits == lh);
        }
        free(it);
        free(sz);
    }
    /* two tiers, exact: 10 items of 1 MiB, VRAM 4.5 MiB and RAM 5 MiB with k = 2:
     * VRAM pins 2 (2 + 2 slots = 4 MiB), RAM pins 3 of the other 8 (3 + 2 = 5), 5 stream */
    vt_plan_item it[10];
    for (int i = 0; i < 10; i++) it[i].bytes = 1 << 20;
    vt_plan_config c = {.vram_bytes = 9 << 19, .ram_bytes = 5 << 20, .slots = 2};
    vt_plan_result r;
    CHECK_RC(vt_plan_cyclic(&c, it, 10, &r));
    CHECK(r.vram_pinned_n == 2 && r.ram_pinned_n == 3 && r.streamed_n == 5 && r.oversize_n == 0);
    CHECK(r.vram_slot == 1 << 20 && r.ram_slot == 1 << 20);
    CHECK(it[0].place == VT_PLACE_VRAM_PIN &&
          it[1].place == VT_PLACE_VRAM_PIN); /* ties: schedule order */
    CHECK(it[2].place == VT_PLACE_RAM_PIN && it[4].place == VT_PLACE_RAM_PIN &&
          it[5].place == VT_PLACE_STREAM);
    /* a tensor larger than a slot can hold: oversize */
    it[9].bytes = 3 << 20;
    CHECK_RC(vt_plan_cyclic(&c, it, 10, &r));
    CHECK(it[9].place == VT_PLACE_OVERSIZE || it[9].place == VT_PLACE_VRAM_PIN);
}

static void test_planner_random(void) {
    for (int trial = 0; trial < 200; trial++) {
        size_t n = 1 + vt_rand_u64() % 40;
        vt_plan_item *it = calloc(n, sizeof *it);
        uint64_t model = 0, maxb = 0;
        for (size_t i = 0; i < n; i++) {
            it[i].bytes = 4096 * (1 + vt_rand_u64() % 100);
            model += it[i].bytes;
            if (it[i].bytes > maxb) maxb = it[i].bytes;
        }
        uint32_t k = 2 + (uint32_t)(vt_rand_u64() % 3);
        vt_plan_config c = {.vram_bytes =
                                vt_rand_u64() % 2 ? (uint64_t)(vt_rand_uniform() * model) : 0,
                            .ram_bytes = 1 + (uint64_t)(vt_rand_uniform() * model),
                            .slots = k};
        vt_plan_result r;
        CHECK_RC(vt_plan_cyclic(&c, it, n, &r));
        uint64_t pv = 0, pr = 0, sv = 0, sr = 0;
        for (size_t i = 0; i < n; i++) {
            if (it[i].place == VT_PLACE_VRAM_PIN) pv += it[i].bytes;
            if (it[i].place == VT_PLACE_RAM_PIN) pr += it[i].bytes;
            if (c.vram_bytes &&
                (it[i].place == VT_PLACE_RAM_PIN || it[i].place == VT_PLACE_STREAM) &&
                it[i].bytes > sv)
                sv = it[i].bytes;
            if (it[i].place == VT_PLACE_STREAM && it[i].bytes > sr) sr = it[i].bytes;
            if (!c.vram_bytes) CHECK(it[i].place != VT_PLACE_VRAM_PIN);
        }
        CHECK(pv == r.vram_pinned && pr == r.ram_pinned);
        CHECK(sv <= r.vram_slot || !c.vram_bytes);
        CHECK(sr <= r.ram_slot);
        if (c.vram_bytes) CHECKF(pv + k * r.vram_slot <= c.vram_bytes, "vram over budget");
        CHECKF(pr + k * r.ram_slot <= c.ram_bytes, "ram over budget: %llu + %u * %llu > %llu",
               (unsigned long long)pr, k, (unsigned long long)r.ram_slot,
               (unsigned long long)c.ram_bytes);
        /* maximal in RAM: no streamed item could also be pinned with the ring it leaves (the ring
         * also stages the first load of VRAM-pinned items) */
        uint64_t stage = 0;
        for (size_t j = 0; j < n; j++)
            if (it[j].place == VT_PLACE_VRAM_PIN && it[j].bytes > stage) stage = it[j].bytes;
        CHECK(stage <= r.ram_slot);
        for (size_t i = 0; i < n; i++) {
            if (it[i].place != VT_PLACE_STREAM) continue;
            uint64_t s2 = stage;
            for (size_t j = 0; j < n; j++)
                if (j != i && it[j].place == VT_PLACE_STREAM && it[j].bytes > s2) s2 = it[j].bytes;
            CHECK(pr + it[i].bytes + k * s2 > c.ram_bytes);
        }
        free(it);
    }
}

/* ---- S3-FIFO ---- */
static int busy_key = -1;
static int can_evict(void *ctx, uint32_t key) {
    (void)ctx;
    return (int)key != busy_key;
}

static uint64_t s3_run(vt_s3fifo *c, const uint32_t *keys, size_t n, uint64_t *misses) {
    uint64_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        if (vt_s3fifo_access(c, keys[i])) {
            hits++;
            continue;
        }
        (*misses)++;
        while (vt_s3fifo_overflow(c, 1)) {
            uint32_t v;
            if (vt_s3fifo_evict(c, can_evict, NULL, &v)) break;
            CHECK((int)v != busy_key);
        }
        vt_s3fifo_insert(c, keys[i], 1);
    }
    return hits;
}

static void test_s3fifo(void) {
    enum { CAP = 100, HOT = 20, SCAN = 1000 };
    vt_s3fifo *c;
    CHECK_RC(vt_s3fifo_create(CAP, 2000, &c));
    uint32_t tr[3 * HOT + SCAN + HOT];
    size_t n = 0;
    for (int r = 0; r < 3; r++)
        for (int h = 0; h < HOT; h++) tr[n++] = (uint32_t)h;
    for (int s = 0; s < SCAN; s++) tr[n++] = 100 + (uint32_t)s;
    for (int h = 0; h < HOT; h++) tr[n++] = (uint32_t)h;
    uint64_t misses = 0;
    uint64_t hits = s3_run(c, tr, n, &misses);
    /* warm-up: 20 misses then 40 hits; the scan misses 1000 times; the hot set survives: 20 hits */
    CHECKF(hits == 2 * HOT + HOT, "s3fifo hits %llu, expected %d", (unsigned long long)hits,
           3 * HOT);
    CHECK(misses == HOT + SCAN);
    CHECK(vt_s3fifo_used(c) == CAP);
    /* LRU with the same capacity loses the hot set to the scan */
    uint64_t *sz = malloc(2000 * sizeof *sz);
    for (int i = 0; i < 2000; i++) sz[i] = 1;
    {
        /* replay the trace through a keyed LRU */
        uint64_t stamp[2000] = {0}, used = 0, t = 0, lh = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t k = tr[i];
            t++;
            if (stamp[k]) {
                lh++;
                stamp[k] = t;
                continue;
            }
            if (used == CAP) {
                uint32_t v = 0;
                uint64_t best = UINT64_MAX;
                for (uint32_t j = 0; j < 2000; j++)
                    if (stamp[j] && stamp[j] < best) best = stamp[j], v = j;
                stamp[v] = 0;
                used--;
            }
            stamp[k] = t;
            used++;
        }
        CHECKF(lh == 2 * HOT, "LRU hits %llu, expected %d (hot set flushed)",
               (unsigned long long)lh, 2 * HOT);
    }
    free(sz);
    vt_s3fifo_destroy(c);

    /* ghost: a key evicted from small comes back straight into main and survives a scan */
    CHECK_RC(vt_s3fifo_create(CAP, 2000, &c));
    uint32_t g[2 * CAP + 1 + 2 * CAP];
    n = 0;
    g[n++] = 7;
    for (int s = 0; s < CAP; s++) g[n++] = 1000 + (uint32_t)s; /* 7 is evicted to the ghost */
    uint64_t m2 = 0;
    s3_run(c, g, n, &m2);
    CHECK(!vt_s3fifo_contains(c, 7));
    n = 0;
    g[n++] = 7; /* miss, inserted into main */
    for (int s = 0; s < 3 * CAP; s++) g[n++] = 1200 + (uint32_t)(s % 700);
    s3_run(c, g, n, &m2);
    CHECK(vt_s3fifo_contains(c, 7)); /* kept: main is not touched while small churns */
    vt_s3fifo_destroy(c);

    /* keys in use are never evicted; all in use = -EBUSY */
    CHECK_RC(vt_s3fifo_create(4, 100, &c));
    for (uint32_t k = 0; k < 4; k++) vt_s3fifo_insert(c, k, 1);
    busy_key = 0;
    uint32_t v = 99;
    CHECK_RC(vt_s3fifo_evict(c, can_evict, NULL, &v));
    CHECK(v == 1); /* 0 is skipped, 1 is next in FIFO order */
    busy_key = -1;
    vt_s3fifo_destroy(c);
    CHECK_RC(vt_s3fifo_create(4, 100, &c));
    vt_s3fifo_insert(c, 3, 4);
    busy_key = 3;
    CHECK(vt_s3fifo_evict(c, can_evict, NULL, &v) == -EBUSY);
    busy_key = -1;
    vt_s3fifo_destroy(c);
}

int main(void) {
    vt_test_seed();
    test_suballoc();
    test_planner_uniform();
    test_planner_random();
    test_s3fifo();
    return vt_test_done("test_policy");
}
