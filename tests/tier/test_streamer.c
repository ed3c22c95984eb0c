/* Streamer on a real store: cyclic passes deliver the right bytes with exact per-tier hit counts
 * (pinned items hit from the second pass on, streamed ones miss), with and without a device
 * tier, with both io engines (forced through VT_IO_ENGINE); random access; budgets too large;
 * tensors larger than a slot (VT_EBUDGET, or parts with chunkwise); a flipped byte in a shard
 * gives VT_ECORRUPT naming tensor and chunk; injected EIO and short reads fail the acquire and
 * a later acquire succeeds; a thread holding every ring slot gets VT_EBUDGET instead of a hang;
 * a plan that fails on any allocation leaves a streamer that refuses acquires (VT_EUSAGE) and
 * plans again cleanly. */
#include <errno.h>
#include <fcntl.h>

#include "tier_util.h"

static tu_store ts;

static void cyclic(const char *engine, uint64_t vram, uint64_t ram, int passes) {
    setenv("VT_IO_ENGINE", engine, 1);
    vt_tier_config c = {.vram_bytes = vram, .ram_bytes = ram, .prefetch = 2, .ring_slots = 3};
    vt_streamer *st = NULL;
    int rc = vt_streamer_open(ts.s, &c, &st);
    CHECK_RC(rc);
    if (rc) return;
    vt_streamer_stats s0;
    CHECK_RC(vt_streamer_get_stats(st, &s0));
    CHECK(s0.engine == (!strcmp(engine, "pread") ? VT_IO_PREAD : VT_IO_URING));
    const char *names[64];
    for (int i = 0; i < ts.n; i++) names[i] = ts.names[(i * 7) % ts.n]; /* not name order */
    CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC));
    uint64_t nv = 0, nr = 0, ns = 0, pinned_b = 0;
    for (int i = 0; i < ts.n; i++) {
        vt_placement p;
        CHECK_RC(vt_streamer_placement(st, names[i], &p));
        nv += p == VT_PLACE_VRAM_PIN;
        nr += p == VT_PLACE_RAM_PIN;
        ns += p == VT_PLACE_STREAM;
        if (p == VT_PLACE_VRAM_PIN || p == VT_PLACE_RAM_PIN)
            pinned_b += ts.bytes[tu_index(&ts, names[i])];
    }
    CHECKF(nv + nr + ns == (uint64_t)ts.n, "vram %llu ram %llu stream %llu of %d",
           (unsigned long long)nv, (unsigned long long)nr, (unsigned long long)ns, ts.n);
    CHECK(ns > 0);      /* the store is larger than the budgets */
    CHECK(nv + nr > 0); /* and something is pinned */
    if (!vram) CHECK(nv == 0);
    uint64_t model = 0;
    for (int i = 0; i < ts.n; i++) model += ts.bytes[i];
    uint64_t prev_hits = 0;
    for (int p = 0; p < passes; p++) {
        for (int i = 0; i < ts.n; i++) {
            vt_weight w;
            rc = vt_streamer_acquire(st, names[i], &w);
            CHECK_RC(rc);
            if (rc) continue;
            {
                vt_streamer_stats ss;
                vt_streamer_get_stats(st, &ss);
                CHECK(w.location == ((vram && ss.device_is_gpu) ? VT_LOC_DEVICE : VT_LOC_HOST));
            }
            CHECKF(tu_match(&ts, tu_index(&ts, names[i]), &w), "pass %d %s: bytes differ", p,
                   names[i]);
            CHECK(w.format == VT_FMT_F32 && w.row0 == 0);
            CHECK_RC(vt_streamer_release(st, &w));
        }
        vt_streamer_stats s;
        CHECK_RC(vt_streamer_get_stats(st, &s));
        uint64_t hits = (vram ? s.vram.hits : 0) + s.ram.hits;
        if (p > 0) {
            /* per pass: every pinned tensor hits; byte hit rate = pinned / model (LRU: 0) */
            uint64_t ph = hits - prev_hits;
            CHECKF(ph == nv + nr, "pass %d: %llu hits, expected %llu", p, (unsigned long long)ph,
                   (unsigned long long)(nv + nr));
            CHECK((double)pinned_b / model > 0);
        }
        prev_hits = hits;
    }
    vt_streamer_stats s;
    CHECK_RC(vt_streamer_get_stats(st, &s));
    uint64_t n = (uint64_t)ts.n, P = (uint64_t)passes;
    CHECK(s.acquires == n * P);
    if (vram) {
        CHECKF(s.vram.hits == nv * (P - 1), "vram hits %llu expected %llu",
               (unsigned long long)s.vram.hits, (unsigned long long)(nv * (P - 1)));
        CHECK(s.vram.misses == n + (nr + ns) * (P - 1));
    } else {
        CHECK(s.vram.hits == 0 && s.vram.misses == 0);
    }
    CHECKF(s.ram.hits == nr * (P - 1), "ram hits %llu expected %llu",
           (unsigned long long)s.ram.hits, (unsigned long long)(nr * (P - 1)));
    CHECKF(s.ram.misses == n + ns * (P - 1), "ram misses %llu expected %llu",
           (unsigned long long)s.ram.misses, (unsigned long long)(n + ns * (P - 1)));
    CHECK(s.bytes_read > 0 && s.ram.bytes_in > 0);
    /* handles must be released before re-planning */
    vt_weight held;
    CHECK_RC(vt_streamer_acquire(st, names[0], &held));
    CHECK(vt_streamer_plan(st, names, 1, VT_SCHEDULE_CYCLIC) == VT_EUSAGE);
    CHECK_RC(vt_streamer_release(st, &held));
    CHECK(vt_streamer_release(st, &held) == -EINVAL);
    vt_streamer_close(st);
    unsetenv("VT_IO_ENGINE");
}

static void random_access(uint64_t vram, uint64_t ram) {
    vt_tier_config c = {.vram_bytes = vram, .ram_bytes = ram};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    for (int k = 0; k < 150; k++) {
        int i = (int)(vt_rand_u64() % (uint64_t)ts.n);
        if (k % 3 == 0) i = (int)(vt_rand_u64() % 3); /* a hot set */
        vt_weight w;
        int rc = vt_streamer_acquire(st, ts.names[i], &w);
        CHECK_RC(rc);
        if (rc) continue;
        CHECKF(tu_match(&ts, i, &w), "random %s: bytes differ", ts.names[i]);
        CHECK_RC(vt_streamer_release(st, &w));
    }
    vt_streamer_stats s;
    CHECK_RC(vt_streamer_get_stats(st, &s));
    CHECK(s.acquires == 150);
    if (vram)
        CHECK(s.vram.hits + s.vram.misses == 150 && s.ram.hits + s.ram.misses == s.vram.misses);
    else
        CHECK(s.ram.hits + s.ram.misses == 150);
    CHECK(s.ram.hits > 0 || (vram && s.vram.hits > 0)); /* the hot set stays */
    vt_weight w;
    CHECK(vt_streamer_acquire(st, "no.such.tensor", &w) == VT_ENOTFOUND);
    CHECK(strstr(vt_streamer_errmsg(st), "no.such.tensor") != NULL);
    vt_streamer_close(st);
}

static void budgets(void) {
    vt_streamer *st = NULL;
    vt_tier_config big = {.ram_bytes = 1ull << 52};
    int rc = vt_streamer_open(ts.s, &big, &st);
    CHECK(rc == VT_EBUDGET && st == NULL);
    CHECKF(strstr(vt_last_error(), "4503599627370496") != NULL, "message: %s", vt_last_error());
    vt_tier_config bigv = {.ram_bytes = 1 << 20, .vram_bytes = 1ull << 52};
    CHECK(vt_streamer_open(ts.s, &bigv, &st) == VT_EBUDGET);
    vt_tier_config zero = {.ram_bytes = 0};
    CHECK(vt_streamer_open(ts.s, &zero, &st) == -EINVAL);
    vt_tier_config one = {.ram_bytes = 1 << 20, .ring_slots = 1};
    CHECK(vt_streamer_open(ts.s, &one, &st) == -EINVAL);
    vt_fault_arm(VT_FAULT_DEVICE, 1, -ENOMEM);
    vt_tier_config ok = {.ram_bytes = 1 << 20};
    CHECK(vt_streamer_open(ts.s, &ok, &st) == -ENOMEM);
    vt_fault_disarm();
    /* a budget too small for the largest tensor: VT_EBUDGET at acquire, naming it */
    int li = 0;
    for (int i = 0; i < ts.n; i++)
        if (ts.bytes[i] > ts.bytes[li]) li = i;
    vt_tier_config small = {.ram_bytes = ts.bytes[li] * 3 / 4, .ring_slots = 2};
    CHECK_RC(vt_streamer_open(ts.s, &small, &st));
    if (st) {
        vt_weight w;
        rc = vt_streamer_acquire(st, ts.names[li], &w);
        CHECKF(rc == VT_EBUDGET, "rc %d", rc);
        CHECKF(strstr(vt_last_error(), ts.names[li]) && strstr(vt_last_error(), "chunkwise"),
               "message: %s", vt_last_error());
        uint64_t np = 0;
        CHECK_RC(vt_streamer_parts(st, ts.names[li], &np));
        CHECK(np == 1);
        vt_streamer_close(st);
    }
    /* chunkwise: the same tensor comes in parts covering every row once */
    small.chunkwise = 1;
    CHECK_RC(vt_streamer_open(ts.s, &small, &st));
    if (st) {
        vt_weight w;
        CHECK(vt_streamer_acquire(st, ts.names[li], &w) == VT_EBUDGET);
        CHECK(strstr(vt_last_error(), "vt_streamer_acquire_part") != NULL);
        uint64_t np = 0;
        CHECK_RC(vt_streamer_parts(st, ts.names[li], &np));
        CHECK(np > 1);
        const char *one_name[1] = {ts.names[li]};
        CHECK_RC(vt_streamer_plan(st, one_name, 1, VT_SCHEDULE_CYCLIC));
        for (int pass = 0; pass < 2; pass++) {
            uint64_t next_row = 0;
            for (uint64_t p = 0; p < np; p++) {
                int rc2 = vt_streamer_acquire_part(st, ts.names[li], p, &w);
                CHECK_RC(rc2);
                if (rc2) break;
                CHECK(w.row0 == next_row && w.rows > 0);
                CHECK(tu_match(&ts, li, &w));
                next_row += w.rows;
                CHECK_RC(vt_streamer_release(st, &w));
            }
            CHECK(next_row == ts.rows[li]);
        }
        CHECK(vt_streamer_acquire_part(st, ts.names[li], np, &w) == -ERANGE);
        vt_streamer_close(st);
    }
}

/* Every allocation of a cyclic plan failing in turn: the plan returns -ENOMEM with a message,
 * the I/O thread (woken by the plan) starts nothing, acquire says there is no plan, and a clean
 * plan afterwards streams the right bytes. (A plan that left a ring size without its slot table
 * once crashed the I/O thread.) */
static void plan_faults(uint64_t vram, uint64_t ram) {
    vt_tier_config c = {.vram_bytes = vram, .ram_bytes = ram, .prefetch = 2, .ring_slots = 3};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    const char *names[64];
    for (int i = 0; i < ts.n; i++) names[i] = ts.names[i];
    vt_fault_arm(VT_FAULT_ALLOC, UINT64_MAX, 0);
    CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC));
    uint64_t count = vt_fault_count();
    vt_fault_disarm();
    CHECK(count >= 5);
    for (uint64_t n = 1; n <= count; n++) {
        vt_clear_error();
        vt_fault_arm(VT_FAULT_ALLOC, n, -ENOMEM);
        int rc = vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC);
        vt_fault_disarm();
        /* the count includes reads the I/O thread starts right after a plan: a fault there
         * fails one load (reported to its acquirer) and lets the plan succeed */
        CHECKF(rc == 0 || rc == -ENOMEM, "site %llu: rc %d", (unsigned long long)n, rc);
        vt_weight w;
        if (rc) {
            CHECKF(vt_last_error()[0] != 0, "site %llu: no message", (unsigned long long)n);
            /* the schedule copy is the plan's first allocation: when it fails the old plan stays
             * in force. Which armed site that is depends on how many allocations the I/O
             * thread's prefetch made first, so recognise it by its message, not by n. */
            int kept = strstr(vt_last_error(), "for a schedule") != NULL;
            int rc2 = vt_streamer_acquire(st, names[0], &w);
            CHECKF(kept ? rc2 == 0 : rc2 == VT_EUSAGE && strstr(vt_last_error(), "no plan"),
                   "site %llu: acquire after a failed plan: %d %s", (unsigned long long)n, rc2,
                   vt_last_error());
            if (!rc2) vt_streamer_release(st, &w);
            CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC));
        }
        for (int i = 0; i < ts.n; i++) {
            rc = vt_streamer_acquire(st, names[i], &w);
            if (rc == -ENOMEM) rc = vt_streamer_acquire(st, names[i], &w); /* failed prefetch */
            CHECKF(rc == 0, "site %llu: acquire %s: %s", (unsigned long long)n, names[i],
                   vt_last_error());
            if (rc) break;
            CHECK(tu_match(&ts, i, &w));
            CHECK_RC(vt_streamer_release(st, &w));
        }
    }
    vt_streamer_close(st);
}

/* A thread holding a handle in every ring slot cannot get another streamed tensor: VT_EBUDGET,
 * not a hang; after a release it can. With and without a device tier. */
static void ring_held(uint64_t vram) {
    uint64_t maxb = 0;
    for (int i = 0; i < ts.n; i++)
        if (ts.bytes[i] > maxb) maxb = ts.bytes[i];
    uint64_t slot = (maxb + 8191) / 4096 * 4096;
    vt_tier_config c = {.vram_bytes = vram ? 2 * slot : 0,
                        .ram_bytes = 2 * slot + 4096,
                        .prefetch = 1,
                        .ring_slots = 2};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    const char *names[64], *streamed[64];
    int ns = 0;
    for (int i = 0; i < ts.n; i++) names[i] = ts.names[i];
    CHECK_RC(vt_streamer_plan(st, names, (size_t)ts.n, VT_SCHEDULE_CYCLIC));
    for (int i = 0; i < ts.n; i++) {
        vt_placement p;
        CHECK_RC(vt_streamer_placement(st, names[i], &p));
        if (p == VT_PLACE_STREAM) streamed[ns++] = names[i];
    }
    CHECKF(ns >= 3, "%d streamed", ns);
    if (ns >= 3) {
        vt_weight w[3];
        CHECK_RC(vt_streamer_acquire(st, streamed[0], &w[0]));
        CHECK_RC(vt_streamer_acquire(st, streamed[1], &w[1]));
        int rc = vt_streamer_acquire(st, streamed[2], &w[2]);
        CHECKF(rc == VT_EBUDGET, "rc %d (%s)", rc, vt_strerror(rc));
        CHECKF(strstr(vt_streamer_errmsg(st), "ring slots") != NULL, "message: %s",
               vt_streamer_errmsg(st));
        CHECK_RC(vt_streamer_release(st, &w[0]));
        CHECK_RC(vt_streamer_acquire(st, streamed[2], &w[2]));
        CHECK(tu_match(&ts, tu_index(&ts, streamed[2]), &w[2]));
        CHECK_RC(vt_streamer_release(st, &w[1]));
        CHECK_RC(vt_streamer_release(st, &w[2]));
    }
    vt_streamer_close(st);
}

static void flip_byte(const char *name, uint64_t chunk, uint64_t at) {
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(ts.s, name, chunk, &ci));
    char path[4096];
    CHECK_RC(vt_store_shard_path(ts.s, ci.shard_id, path, sizeof path));
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    unsigned char b;
    CHECK(pread(fd, &b, 1, (off_t)(ci.offset + at % ci.stored_len)) == 1);
    b ^= 0x5a;
    CHECK(pwrite(fd, &b, 1, (off_t)(ci.offset + at % ci.stored_len)) == 1);
    fsync(fd);
    close(fd);
}

static void corruption_and_faults(const char *engine) {
    setenv("VT_IO_ENGINE", engine, 1);
    for (int retry = 0; retry < 2; retry++) {
        vt_tier_config c = {.ram_bytes = 8u << 20, .retry_corrupt = retry};
        vt_streamer *st = NULL;
        CHECK_RC(vt_streamer_open(ts.s, &c, &st));
        if (!st) continue;
        int i = (int)(vt_rand_u64() % (uint64_t)ts.n);
        vt_tensor_info ti;
        CHECK_RC(vt_store_stat(ts.s, ts.names[i], &ti));
        uint64_t chunk = vt_rand_u64() % ti.n_chunks;
        uint64_t at = vt_rand_u64();
        flip_byte(ts.names[i], chunk, at);
        vt_weight w;
        int rc = vt_streamer_acquire(st, ts.names[i], &w);
        CHECKF(rc == VT_ECORRUPT, "rc %d (%s)", rc, vt_strerror(rc));
        char want[64];
        snprintf(want, sizeof want, "chunk %llu", (unsigned long long)chunk);
        CHECKF(strstr(vt_last_error(), ts.names[i]) && strstr(vt_last_error(), want), "message: %s",
               vt_last_error());
        CHECK(strstr(vt_streamer_errmsg(st), "checksum") != NULL);
        vt_streamer_stats s;
        CHECK_RC(vt_streamer_get_stats(st, &s));
        CHECK(s.corrupt_retries == (uint64_t)retry);
        flip_byte(ts.names[i], chunk, at); /* repair: the next acquire re-reads and succeeds */
        rc = vt_streamer_acquire(st, ts.names[i], &w);
        CHECK_RC(rc);
        if (!rc) {
            CHECK(tu_match(&ts, i, &w));
            CHECK_RC(vt_streamer_release(st, &w));
        }
        vt_streamer_close(st);
    }
    /* injected EIO and short read on the first read of an acquire */
    for (int kind = 0; kind < 2; kind++) {
        vt_tier_config c = {.ram_bytes = 8u << 20};
        vt_streamer *st = NULL;
        CHECK_RC(vt_streamer_open(ts.s, &c, &st));
        if (!st) continue;
        int i = (int)(vt_rand_u64() % (uint64_t)ts.n);
        vt_fault_arm(VT_FAULT_READ, 1, kind ? VT_FAULT_SHORT : -EIO);
        vt_weight w;
        int rc = vt_streamer_acquire(st, ts.names[i], &w);
        vt_fault_disarm();
        CHECK(vt_fault_fired());
        CHECKF(rc == (kind ? VT_EFORMAT : -EIO), "rc %d (%s)", rc, vt_strerror(rc));
        CHECKF(strstr(vt_last_error(), ts.names[i]) && strstr(vt_last_error(), "shard"),
               "message: %s", vt_last_error());
        rc = vt_streamer_acquire(st, ts.names[i], &w);
        CHECK_RC(rc);
        if (!rc) {
            CHECK(tu_match(&ts, i, &w));
            CHECK_RC(vt_streamer_release(st, &w));
        }
        vt_streamer_close(st);
    }
    unsetenv("VT_IO_ENGINE");
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("streamer", dir, sizeof dir);
    /* 24 tensors of 64..160 rows x 256 f32 (64..160 KiB), chunks of ~16 KiB, zstd on */
    tu_make(&ts, dir, 24, 64, 160, 256, 16384, 3);
    uint64_t model = 0, maxb = 0;
    for (int i = 0; i < ts.n; i++) {
        model += ts.bytes[i];
        if (ts.bytes[i] > maxb) maxb = ts.bytes[i];
    }
    uint64_t ring = 3 * ((maxb + 8191) / 4096 * 4096);
    printf("model %llu bytes, largest tensor %llu\n", (unsigned long long)model,
           (unsigned long long)maxb);
    const char *engines[2] = {"uring", "pread"};
    for (int e = 0; e < 2; e++) {
        cyclic(engines[e], 0, ring + model / 4, 3);                /* host only: RAM pins + ring */
        cyclic(engines[e], ring + model / 5, ring + model / 4, 3); /* both tiers */
    }
    random_access(0, model / 2);
    random_access(model / 3, model / 2);
    budgets();
    plan_faults(0, ring + model / 4);
    plan_faults(ring + model / 5, ring + model / 4);
    ring_held(0);
    ring_held(1);
    corruption_and_faults("uring");
    corruption_and_faults("pread");
    tu_free(&ts);
    return vt_test_done("test_streamer");
}
