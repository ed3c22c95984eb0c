/* Streamer hazards found in review, each once a hang or a leak:
 *  - S3-FIFO eviction answered "nothing evictable" (-EBUSY) while main held only keys in use and
 *    the small queue, under its 10% share, held an evictable one: a random-access acquire then
 *    waited forever for room that one eviction would have made (single thread, one handle held);
 *  - a sub-allocator free that had to grow its extent list failed on allocation and kept the bytes
 *    counted as used: a tier lost that much budget for good;
 *  - vt_streamer_close while another thread was blocked in acquire left that thread asleep on a
 *    condition variable that close then destroyed and freed (hang, use after free); blocked
 *    acquires now return VT_EUSAGE and close waits for them to leave;
 *  - a budget within 4095 bytes of 2^64 rounded up to 0 (and ram + vram wrapped past the host
 *    memory check): open succeeded with an empty tier instead of failing with VT_EBUDGET;
 *  - a thread whose own handles filled the top tier's cache (random access, or a tensor outside
 *    the cyclic schedule once the ring slots were held too) waited forever in acquire for room
 *    only its own releases could make: now VT_EBUDGET, as for the ring slots; while another
 *    thread holds a handle there, acquire still waits for it.
 * A watchdog turns a hang into a failure naming the step. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "tier_util.h"
#include "tiering/streamer_internal.h"

static tu_store ts;

/* ---- S3-FIFO: main all in use, small under its share but evictable ---- */
static int busy_key;
static int can_evict_but(void *ctx, uint32_t key) {
    (void)ctx;
    return (int)key != busy_key;
}

static void s3fifo_small_under_share(void) {
    tu_step = "s3fifo";
    vt_s3fifo *c;
    CHECK_RC(vt_s3fifo_create(100, 8, &c));
    if (!c) return;
    busy_key = 0;
    vt_s3fifo_insert(c, 0, 90); /* X: seen again, then in use */
    CHECK(vt_s3fifo_access(c, 0));
    vt_s3fifo_insert(c, 1, 6); /* s: seen once, not in use */
    uint32_t v = UINT32_MAX;
    /* X is promoted to main; s (6 bytes, under 10% of 100) is the only evictable key */
    int rc = vt_s3fifo_evict(c, can_evict_but, NULL, &v);
    CHECKF(rc == 0 && v == 1, "evict: rc %d victim %u (expected the small queue's key 1)", rc, v);
    CHECK(vt_s3fifo_contains(c, 0));
    /* now only X is resident and it is in use: nothing can go */
    CHECK(vt_s3fifo_evict(c, can_evict_but, NULL, &v) == -EBUSY);
    /* main holds a key in use and one seen again (freq > 0) */
    vt_s3fifo_destroy(c);
    CHECK_RC(vt_s3fifo_create(100, 8, &c));
    if (!c) return;
    vt_s3fifo_insert(c, 0, 40);
    vt_s3fifo_insert(c, 1, 40);
    vt_s3fifo_access(c, 0);
    vt_s3fifo_access(c, 1);
    busy_key = 7;
    vt_s3fifo_insert(c, 2, 15);
    CHECK(vt_s3fifo_evict(c, can_evict_but, NULL, &v) == 0 && v == 2); /* 0, 1 promoted */
    vt_s3fifo_access(c, 1);                                            /* main: 0, 1 (freq 1) */
    busy_key = 0;
    vt_s3fifo_insert(c, 3, 5); /* small: 3, under its share */
    /* main's head is in use, its next key gets a second chance then goes: S3-FIFO's choice */
    rc = vt_s3fifo_evict(c, can_evict_but, NULL, &v);
    CHECKF(rc == 0 && v == 1, "evict: rc %d victim %u (expected main's key 1)", rc, v);
    vt_s3fifo_destroy(c);
}

/* ---- sub-allocator: a free never fails ---- */
static void suballoc_free_no_alloc(void) {
    tu_step = "suballoc";
    enum { N = 64 };
    vt_suballoc a;
    CHECK_RC(vt_suballoc_init(&a, (uint64_t)N * 4096));
    uint64_t off[N];
    for (int i = 0; i < N; i++) CHECK_RC(vt_suballoc_alloc(&a, 4096, &off[i]));
    CHECK(a.used == (uint64_t)N * 4096);
    /* every other block freed: N/2 separate extents, more than the initial list holds */
    vt_fault_arm(VT_FAULT_ALLOC, 1, -ENOMEM); /* any allocation from here on fails once */
    int fails = 0;
    for (int i = 0; i < N; i += 2) fails += vt_suballoc_free(&a, off[i], 4096) != 0;
    vt_fault_disarm();
    CHECKF(fails == 0, "%d frees failed (the bytes stay counted as used)", fails);
    CHECKF(a.used == (uint64_t)N / 2 * 4096, "used %llu after freeing half of %d blocks",
           (unsigned long long)a.used, N);
    for (int i = 1; i < N; i += 2) CHECK_RC(vt_suballoc_free(&a, off[i], 4096));
    CHECK(a.used == 0 && a.nfree == 1 && vt_suballoc_largest(&a) == (uint64_t)N * 4096);
    /* an allocation that cannot reserve room for its later free fails cleanly instead */
    uint64_t o;
    for (int i = 0; i < N; i++) {
        vt_fault_arm(VT_FAULT_ALLOC, 1, -ENOMEM);
        int rc = vt_suballoc_alloc(&a, 4096, &o);
        vt_fault_disarm();
        if (rc) {
            CHECK(rc == -ENOMEM);
            CHECK_RC(vt_suballoc_alloc(&a, 4096, &o));
        }
    }
    CHECK(a.used == (uint64_t)N * 4096);
    vt_suballoc_fini(&a);
}

/* ---- budgets within 4095 bytes of 2^64: VT_EBUDGET at open, not an empty tier ---- */
static void budgets_near_2_64(void) {
    tu_step = "budgets near 2^64";
    vt_tier_config cfg[2] = {
        {.ram_bytes = 1u << 20, .vram_bytes = UINT64_MAX, .io_engine = VT_IO_PREAD},
        {.ram_bytes = UINT64_MAX, .vram_bytes = 1u << 20, .io_engine = VT_IO_PREAD}, /* sum wraps */
    };
    for (int k = 0; k < 2; k++) {
        vt_streamer *st = NULL;
        int rc = vt_streamer_open(ts.s, &cfg[k], &st);
        CHECKF(rc == VT_EBUDGET && !st, "config %d: open returned %d (%s)", k, rc,
               rc ? vt_last_error() : "a streamer");
        CHECKF(!rc || strstr(vt_last_error(), "18446744073709551615"), "config %d: message: %s", k,
               vt_last_error());
        vt_streamer_close(st);
    }
}

/* ---- random access: hold a tensor in main, cycle small ones through small ---- */
static uint64_t foot_of(vt_streamer *st, int i) {
    return st->items[st->tensors[vt_st_find(st, ts.names[i])].item].foot;
}

static void random_held_main(void) {
    tu_step = "random access with a handle held";
    /* tensor 0: 90 pages, 1: 6 pages, 2: 8 pages; a RAM tier of 100 pages */
    vt_tier_config c = {.ram_bytes = 100 * 4096};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    CHECK(foot_of(st, 0) == 90 * 4096 && foot_of(st, 1) == 6 * 4096 && foot_of(st, 2) == 8 * 4096);
    vt_weight x, w;
    CHECK_RC(vt_streamer_acquire(st, ts.names[0], &x));
    CHECK_RC(vt_streamer_release(st, &x));
    CHECK_RC(vt_streamer_acquire(st, ts.names[0], &x)); /* a hit: X goes to main when seen */
    for (int k = 0; k < 6; k++) {                       /* X held; 1 and 2 take turns */
        int i = 1 + (k & 1);
        int rc = vt_streamer_acquire(st, ts.names[i], &w);
        CHECKF(rc == 0, "acquire %s while holding %s: %s", ts.names[i], ts.names[0],
               vt_last_error());
        if (rc) break;
        CHECK(tu_match(&ts, i, &w));
        CHECK_RC(vt_streamer_release(st, &w));
    }
    CHECK(tu_match(&ts, 0, &x));
    CHECK_RC(vt_streamer_release(st, &x));
    vt_streamer_close(st);
}

/* ---- the cache full of the caller's own handles ---- */
typedef struct {
    vt_streamer *st;
    const char *name;
    int rc;
    _Atomic int done;
    vt_weight w;
} acq_arg;

static void *acquire_thread(void *p) {
    acq_arg *a = p;
    a->rc = vt_streamer_acquire(a->st, a->name, &a->w);
    a->done = 1;
    return NULL;
}

/* Hold tensor @p i on its own thread until *release is set. */
typedef struct {
    vt_streamer *st;
    int i, rc;
    _Atomic int held, release;
} holder_arg;

static void *holder_thread(void *p) {
    holder_arg *h = p;
    vt_weight w;
    h->rc = vt_streamer_acquire(h->st, ts.names[h->i], &w);
    h->held = 1;
    if (h->rc) return NULL;
    while (!h->release) usleep(1000);
    h->rc = vt_streamer_release(h->st, &w);
    return NULL;
}

static void cache_held_by_caller(void) {
    tu_step = "random access: the cache full of this thread's handles";
    /* tensor 0: 90 pages, 1: 6 pages, 2: 8 pages; a RAM tier of 100 pages */
    vt_tier_config c = {.ram_bytes = 100 * 4096};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    vt_weight x, y, w;
    CHECK_RC(vt_streamer_acquire(st, ts.names[0], &x));
    CHECK_RC(vt_streamer_acquire(st, ts.names[1], &y));
    int rc = vt_streamer_acquire(st, ts.names[2], &w); /* 90 + 6 + 8 > 100: only ours can go */
    CHECKF(rc == VT_EBUDGET && strstr(vt_last_error(), "held by this thread"),
           "acquire with the cache full of own handles: %d (%s)", rc, vt_last_error());
    if (!rc) CHECK_RC(vt_streamer_release(st, &w));
    CHECK_RC(vt_streamer_release(st, &y));
    CHECK_RC(vt_streamer_acquire(st, ts.names[2], &w)); /* room now */
    CHECK(tu_match(&ts, 2, &w));
    CHECK_RC(vt_streamer_release(st, &w));

    tu_step = "random access: another thread's handle in the cache (acquire waits)";
    holder_arg h = {.st = st, .i = 1};
    pthread_t th, ta;
    CHECK(pthread_create(&th, NULL, holder_thread, &h) == 0);
    while (!h.held) usleep(1000);
    CHECK_RC(h.rc);
    acq_arg a = {.st = st, .name = ts.names[2], .rc = 1};
    CHECK(pthread_create(&ta, NULL, acquire_thread, &a) == 0);
    const vt_sitem *it = &st->items[st->tensors[vt_st_find(st, ts.names[2])].item];
    for (int waiting = 0; !waiting && !a.done;) { /* until it sleeps for room (or returned) */
        pthread_mutex_lock(&st->mu);
        waiting = it->wanted > 0;
        pthread_mutex_unlock(&st->mu);
        if (!waiting) usleep(1000);
    }
    h.release = 1; /* the other thread's release makes the room */
    pthread_join(th, NULL);
    pthread_join(ta, NULL);
    CHECK_RC(h.rc);
    CHECKF(a.rc == 0, "acquire waiting on another thread's handle: %d (%s)", a.rc,
           vt_strerror(a.rc));
    if (!a.rc) {
        CHECK(tu_match(&ts, 2, &a.w));
        CHECK_RC(vt_streamer_release(st, &a.w));
    }
    CHECK_RC(vt_streamer_release(st, &x));
    vt_streamer_close(st);

    tu_step = "cyclic: tensors outside the schedule fill the cache, ring slots held";
    /* tensors 2..7 (8 pages) stream through 2 slots of 8 pages; 7 pages are left for the cache
     * that tensors 1 and 8 (6 pages each, outside the schedule) go to */
    const char *names[6];
    for (int i = 0; i < 6; i++) names[i] = ts.names[2 + i];
    vt_tier_config cc = {.ram_bytes = 23 * 4096, .prefetch = 1, .ring_slots = 2};
    CHECK_RC(vt_streamer_open(ts.s, &cc, &st));
    if (!st) return;
    CHECK_RC(vt_streamer_plan(st, names, 6, VT_SCHEDULE_CYCLIC));
    vt_weight h0, h1;
    CHECK_RC(vt_streamer_acquire(st, names[0], &h0)); /* both ring slots */
    CHECK_RC(vt_streamer_acquire(st, names[1], &h1));
    CHECK_RC(vt_streamer_acquire(st, ts.names[1], &y)); /* the cache */
    rc = vt_streamer_acquire(st, ts.names[8], &w);
    CHECKF(rc == VT_EBUDGET && strstr(vt_last_error(), "held by this thread"),
           "acquire outside the schedule, ring and cache held here: %d (%s)", rc, vt_last_error());
    if (!rc) CHECK_RC(vt_streamer_release(st, &w));
    CHECK_RC(vt_streamer_release(st, &y));
    CHECK_RC(vt_streamer_acquire(st, ts.names[8], &w));
    CHECK(tu_match(&ts, 8, &w));
    CHECK_RC(vt_streamer_release(st, &w));
    CHECK_RC(vt_streamer_release(st, &h1));
    CHECK_RC(vt_streamer_release(st, &h0));
    vt_streamer_close(st);
}

/* ---- close while another thread waits in acquire ---- */
typedef struct {
    vt_streamer *st;
    const char *name;
    int rc;
} blocked_arg;

static void *blocked_acquire(void *p) {
    blocked_arg *a = p;
    vt_weight w;
    a->rc = vt_streamer_acquire(a->st, a->name, &w);
    /* the streamer may be gone now: touch nothing of it */
    return NULL;
}

static void close_while_blocked(void) {
    tu_step = "close while an acquire waits";
    /* tensors 2..7 (8 pages each) stream through 2 ring slots; nothing else fits */
    const char *names[6];
    for (int i = 0; i < 6; i++) names[i] = ts.names[2 + i];
    vt_tier_config c = {.ram_bytes = 2 * 8 * 4096 + 4096, .prefetch = 1, .ring_slots = 2};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (!st) return;
    CHECK_RC(vt_streamer_plan(st, names, 6, VT_SCHEDULE_CYCLIC));
    for (int i = 0; i < 6; i++) {
        vt_placement p;
        CHECK_RC(vt_streamer_placement(st, names[i], &p));
        CHECK(p == VT_PLACE_STREAM);
    }
    vt_weight h0, h1;
    CHECK_RC(vt_streamer_acquire(st, names[0], &h0)); /* this thread holds both slots */
    CHECK_RC(vt_streamer_acquire(st, names[1], &h1));
    blocked_arg a = {st, names[2], 1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, blocked_acquire, &a) == 0);
    /* wait until the other thread sleeps in acquire, waiting for a slot */
    const vt_sitem *it = &st->items[st->tensors[vt_st_find(st, names[2])].item];
    for (int waiting = 0; !waiting;) {
        pthread_mutex_lock(&st->mu);
        waiting = it->wanted > 0;
        pthread_mutex_unlock(&st->mu);
        if (!waiting) usleep(1000);
    }
    vt_streamer_close(st); /* the handles held here become invalid */
    pthread_join(th, NULL);
    CHECKF(a.rc == VT_EUSAGE, "blocked acquire returned %d (%s), expected VT_EUSAGE", a.rc,
           vt_strerror(a.rc));
}

int main(void) {
    vt_test_seed();
    tu_watchdog("test_streamer_hazards",
                100); /* a hang, not a speed goal: each step takes milliseconds */
    s3fifo_small_under_share();
    suballoc_free_no_alloc();
    char dir[4096];
    vt_test_tmpdir("streamer_hazards", dir, sizeof dir);
    /* rows of 4096 bytes, 4-row chunks: footprints are exact page counts */
    const uint64_t rows[9] = {90, 6, 8, 8, 8, 8, 8, 8, 6};
    tu_make_rows(&ts, dir, 9, rows, 0, 0, 1024, 16384, 0);
    budgets_near_2_64();
    random_held_main();
    cache_held_by_caller();
    close_while_blocked();
    tu_free(&ts);
    alarm(0);
    return vt_test_done("test_streamer_hazards");
}
