/* Handle identity: every acquire is its own live handle of its streamer, and release takes back
 * exactly that one. Found in review (before, the token was the item index + 1 and release only
 * checked that someone still held the item, so each of these returned 0 and dropped the real
 * holder's reference: its bytes could be reused under it):
 *  - a handle of another streamer (same store, same tensor) released on this one (and, by
 *    construction now, no two streamers' acquisitions share a generation);
 *  - a saved copy of a released handle released while another thread holds the tensor;
 *  - a hand-made handle whose token is the tensor's item index + 1;
 *  - release twice (through a copy) after this thread acquired the tensor again.
 * Each is now -EINVAL naming it, and changes nothing (held count, the tensor's references, the
 * handle passed in). A handle table that cannot grow fails the acquire with -ENOMEM, nothing
 * acquired. Also "held by this thread alone", which decides whether an acquire that
 * cannot get a ring slot or cache room answers VT_EBUDGET instead of waiting forever:
 *  - thread B acquires and releases a tensor thread A holds; A then holds every ring slot (or
 *    everything cached) and acquires more: VT_EBUDGET (it used to hang: the tensor stayed marked
 *    as held by several threads);
 *  - B holds it while A acquires more: A waits; B's release wakes A: VT_EBUDGET (it used to sleep
 *    on, as nothing woke it).
 * A watchdog turns a hang into a failure naming the step. Runs under ThreadSanitizer (tsan). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "tier_util.h"
#include "tiering/streamer_internal.h"

static tu_store ts;

static const vt_sitem *item_of(vt_streamer *st, const char *name) {
    return &st->items[st->tensors[vt_st_find(st, name)].item];
}

static void counts(vt_streamer *st, const char *name, int *held, int *refs) {
    pthread_mutex_lock(&st->mu);
    *held = st->held;
    *refs = item_of(st, name)->refs;
    pthread_mutex_unlock(&st->mu);
}

/* Releasing @p w on @p st is refused with -EINVAL naming it, and changes nothing. */
static void expect_refused(vt_streamer *st, vt_weight *w, const char *name, const char *what) {
    int held, refs, held2, refs2;
    counts(st, name, &held, &refs);
    vt_weight keep;
    memcpy(&keep, w, sizeof keep);
    int rc = vt_streamer_release(st, w);
    CHECKF(rc == -EINVAL && strstr(vt_last_error(), "not a live handle of this streamer"),
           "%s: release returned %d (%s)", what, rc, rc ? vt_last_error() : "accepted");
    counts(st, name, &held2, &refs2);
    CHECKF(held2 == held && refs2 == refs, "%s: handles held %d -> %d, %s references %d -> %d",
           what, held, held2, name, refs, refs2);
    CHECKF(!memcmp(&keep, w, sizeof keep), "%s: the handle passed in was changed", what);
}

/* Hold tensor @p name on its own thread until *release is set (set before: acquire, release). */
typedef struct {
    vt_streamer *st;
    const char *name;
    int rc;
    _Atomic int held, release;
} holder_arg;

static void *holder_thread(void *p) {
    holder_arg *h = p;
    vt_weight w;
    h->rc = vt_streamer_acquire(h->st, h->name, &w);
    h->held = 1;
    if (h->rc) return NULL;
    while (!h->release) usleep(1000);
    h->rc = vt_streamer_release(h->st, &w);
    return NULL;
}

static vt_streamer *open_random(void) {
    vt_tier_config c = {.ram_bytes = 100 * 4096}; /* tensor 0: 90 pages, 1: 6, 2: 8 */
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    return st;
}

/* tensors 2..7 (8 pages each) stream through 2 ring slots; nothing else fits */
static const char *cyc[6];
static vt_streamer *open_cyclic(void) {
    vt_tier_config c = {.ram_bytes = 2 * 8 * 4096 + 4096, .prefetch = 1, .ring_slots = 2};
    vt_streamer *st = NULL;
    CHECK_RC(vt_streamer_open(ts.s, &c, &st));
    if (st) CHECK_RC(vt_streamer_plan(st, cyc, 6, VT_SCHEDULE_CYCLIC));
    return st;
}

/* ---- release: handles that are not live handles of this streamer ---- */

static void other_streamer(void) {
    tu_step = "another streamer's handle";
    const char *n = ts.names[1];
    vt_streamer *a = open_random(), *b = open_random();
    if (!a || !b) goto out;
    vt_weight wa, wb;
    CHECK_RC(vt_streamer_acquire(a, n, &wa)); /* the same item, each streamer's first handle */
    CHECK_RC(vt_streamer_acquire(b, n, &wb));
    expect_refused(b, &wa, n, "streamer A's handle released on B");
    expect_refused(a, &wb, n, "streamer B's handle released on A");
    CHECK(tu_match(&ts, 1, &wa) && tu_match(&ts, 1, &wb));
    CHECK_RC(vt_streamer_release(b, &wb));
    CHECK_RC(vt_streamer_release(a, &wa));
out:
    vt_streamer_close(a);
    vt_streamer_close(b);
}

/* Generations come from one process-wide counter: no two acquisitions, of any streamers, share
 * one, so a token of one streamer can never name a live handle of another (before, each
 * streamer counted from its own random start and a clash was merely unlikely). */
static void generations_unique(void) {
    tu_step = "generations across streamers";
    enum { N = 64 };
    uint64_t g[2 * N];
    vt_streamer *a = open_random(), *b = open_random();
    if (!a || !b) goto out;
    for (int i = 0; i < 2 * N; i++) {
        vt_streamer *st = i % 2 ? b : a; /* interleaved, as two threads' streamers would be */
        vt_weight w;
        CHECK_RC(vt_streamer_acquire(st, ts.names[1], &w));
        g[i] = w.token >> 24;
        CHECK_RC(vt_streamer_release(st, &w));
    }
    for (int i = 0; i < 2 * N; i++)
        for (int j = 0; j < i; j++) CHECK(g[i] != g[j]);
out:
    vt_streamer_close(a);
    vt_streamer_close(b);
}

static void stale_copy(void) {
    tu_step = "a stale copy while another thread holds the tensor";
    const char *n = ts.names[1];
    vt_streamer *st = open_random();
    if (!st) return;
    holder_arg h = {.st = st, .name = n};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, holder_thread, &h) == 0);
    while (!h.held) usleep(1000);
    CHECK_RC(h.rc);
    vt_weight w, copy;
    CHECK_RC(vt_streamer_acquire(st, n, &w));
    memcpy(&copy, &w, sizeof copy);
    CHECK_RC(vt_streamer_release(st, &w));
    expect_refused(st, &copy, n, "a copy of a released handle");
    CHECK_RC(vt_streamer_acquire(st, n, &w)); /* may take the released handle's place */
    expect_refused(st, &copy, n, "a copy of a released handle, its place taken again");
    CHECK(tu_match(&ts, 1, &w));
    CHECK_RC(vt_streamer_release(st, &w));
    h.release = 1;
    pthread_join(th, NULL);
    CHECK_RC(h.rc);
    int held, refs;
    counts(st, n, &held, &refs);
    CHECKF(held == 0 && refs == 0, "after all releases: %d held, %d references", held, refs);
    vt_streamer_close(st);
}

static void hand_made(void) {
    tu_step = "hand-made handles";
    const char *n = ts.names[1];
    vt_streamer *st = open_random();
    if (!st) return;
    vt_weight w, x;
    CHECK_RC(vt_streamer_acquire(st, n, &w));
    memcpy(&x, &w, sizeof x);
    x.token = (uint64_t)(item_of(st, n) - st->items) + 1; /* the old encoding */
    expect_refused(st, &x, n, "a handle made with token = item + 1");
    const uint64_t flips[] = {1, 2, 1ull << 24, 1ull << 32, 1ull << 40, 1ull << 63, ~0ull};
    for (size_t i = 0; i < sizeof flips / sizeof *flips; i++) {
        x.token = w.token ^ flips[i];
        char what[96];
        snprintf(what, sizeof what, "a live token with bits %016llx flipped",
                 (unsigned long long)flips[i]);
        expect_refused(st, &x, n, what);
    }
    vt_weight_host(&x, w.data, w.format, w.rows, w.cols, NULL); /* token 0 */
    expect_refused(st, &x, n, "vt_weight_host's handle");
    CHECK(tu_match(&ts, 1, &w));
    CHECK_RC(vt_streamer_release(st, &w));
    vt_streamer_close(st);
}

static void release_twice(void) {
    tu_step = "release twice";
    const char *n = ts.names[1];
    vt_streamer *st = open_random();
    if (!st) return;
    vt_weight w, copy;
    CHECK_RC(vt_streamer_acquire(st, n, &w));
    memcpy(&copy, &w, sizeof copy);
    CHECK_RC(vt_streamer_release(st, &w));
    CHECK(w.token == 0 && !w.data); /* cleared */
    expect_refused(st, &w, n, "the cleared handle released again");
    expect_refused(st, &copy, n, "a copy released again, nothing held");
    CHECK_RC(vt_streamer_acquire(st, n, &w)); /* this thread holds it again */
    expect_refused(st, &copy, n, "a copy released again while this thread holds it anew");
    CHECK(tu_match(&ts, 1, &w));
    CHECK_RC(vt_streamer_release(st, &w));
    vt_streamer_close(st);
}

/* The handle table cannot grow: -ENOMEM naming it, nothing acquired; then it grows. */
static void table_alloc_fails(void) {
    tu_step = "the handle table cannot grow";
    const char *n = ts.names[1];
    vt_streamer *st = open_random();
    if (!st) return;
    enum { N = 40 };
    vt_weight w[N];
    int got = 0, failed = 0;
    CHECK_RC(vt_streamer_acquire(st, n, &w[got++])); /* read: resident from here on */
    while (got < N && !failed) { /* the next acquire's only allocation: a growing table */
        int held, refs, held2, refs2;
        counts(st, n, &held, &refs);
        vt_fault_arm(VT_FAULT_ALLOC, 1, -ENOMEM);
        int rc = vt_streamer_acquire(st, n, &w[got]);
        vt_fault_disarm();
        if (!rc) {
            got++;
            continue;
        }
        failed = 1;
        counts(st, n, &held2, &refs2);
        CHECKF(rc == -ENOMEM && strstr(vt_last_error(), "handle table"),
               "acquire with the table full: %d (%s)", rc, vt_last_error());
        CHECKF(held2 == held && refs2 == refs, "failed acquire: held %d -> %d, refs %d -> %d", held,
               held2, refs, refs2);
        CHECK_RC(vt_streamer_acquire(st, n, &w[got++])); /* without the fault it grows */
    }
    CHECKF(failed, "%d acquires of one tensor never grew the handle table", N);
    for (int i = 0; i < got; i++) {
        CHECK(tu_match(&ts, 1, &w[i]));
        CHECK_RC(vt_streamer_release(st, &w[i]));
    }
    vt_streamer_close(st);
}

/* Ring: cyc[0], cyc[1] fill both slots and cyc[2] needs one. Cache: tensors 0 and 1 (90 + 6
 * pages) and tensor 2 (8 pages) does not fit in 100. */
typedef struct {
    const char *a0, *a1, *target;
} trio;

static int wanted(vt_streamer *st, const char *name) {
    pthread_mutex_lock(&st->mu);
    int n = item_of(st, name)->wanted;
    pthread_mutex_unlock(&st->mu);
    return n;
}

/* B acquires and releases a0 while this thread holds it; this thread then holds a0 and a1 and
 * acquires target: VT_EBUDGET. */
static void shared_then_own(vt_streamer *st, const trio *t) {
    vt_weight x0, x1, w;
    CHECK_RC(vt_streamer_acquire(st, t->a0, &x0));
    holder_arg b = {.st = st, .name = t->a0, .release = 1};
    pthread_t th;
    CHECK(pthread_create(&th, NULL, holder_thread, &b) == 0);
    pthread_join(th, NULL);
    CHECK_RC(b.rc);
    CHECK_RC(vt_streamer_acquire(st, t->a1, &x1));
    int rc = vt_streamer_acquire(st, t->target, &w);
    CHECKF(rc == VT_EBUDGET && strstr(vt_last_error(), "held by this thread"),
           "%s: acquire %s: %d (%s)", tu_step, t->target, rc, vt_last_error());
    if (!rc) CHECK_RC(vt_streamer_release(st, &w));
    CHECK_RC(vt_streamer_release(st, &x1));
    CHECK_RC(vt_streamer_release(st, &x0));
}

typedef struct {
    vt_streamer *st;
    const trio *t;
    int rc;
    char msg[1024];
    _Atomic int done;
} own_arg;

static void *own_thread(void *p) {
    own_arg *a = p;
    vt_weight x0, x1, w;
    int r0 = vt_streamer_acquire(a->st, a->t->a0, &x0);
    int r1 = vt_streamer_acquire(a->st, a->t->a1, &x1);
    a->rc = r0 ? r0 : r1 ? r1 : vt_streamer_acquire(a->st, a->t->target, &w);
    snprintf(a->msg, sizeof a->msg, "%s", vt_last_error());
    if (!r0 && !r1 && !a->rc) vt_streamer_release(a->st, &w);
    if (!r1) vt_streamer_release(a->st, &x1);
    if (!r0) vt_streamer_release(a->st, &x0);
    a->done = 1;
    return NULL;
}

/* B holds a0; A acquires a0, a1 and target: it waits (B's release could make room). B's
 * release leaves everything held by A alone: A's acquire returns VT_EBUDGET. */
static void wait_then_own(vt_streamer *st, const trio *t) {
    holder_arg b = {.st = st, .name = t->a0};
    pthread_t tb, ta;
    CHECK(pthread_create(&tb, NULL, holder_thread, &b) == 0);
    while (!b.held) usleep(1000);
    CHECK_RC(b.rc);
    own_arg a = {.st = st, .t = t, .rc = 1};
    CHECK(pthread_create(&ta, NULL, own_thread, &a) == 0);
    while (!a.done && !wanted(st, t->target)) usleep(1000); /* until A sleeps in acquire */
    CHECKF(!a.done, "%s: A's acquire returned %d (%s) while B held %s", tu_step, a.rc, a.msg,
           t->a0);
    b.release = 1;
    pthread_join(tb, NULL);
    pthread_join(ta, NULL);
    CHECK_RC(b.rc);
    CHECKF(a.rc == VT_EBUDGET && strstr(a.msg, "held by this thread"), "%s: acquire %s: %d (%s)",
           tu_step, t->target, a.rc, a.msg);
}

static void own_alone(const char *which) {
    int ring = !which || !strcmp(which, "ring"), cache = !which || !strcmp(which, "cache");
    const trio tr = {cyc[0], cyc[1], cyc[2]};
    const trio tc = {ts.names[0], ts.names[1], ts.names[2]};
    vt_streamer *st;
    if (ring) {
        tu_step = "ring: shared with another thread, then held by this one alone";
        if ((st = open_cyclic())) shared_then_own(st, &tr);
        vt_streamer_close(st);
        tu_step = "ring: another thread's release leaves all held by the waiting one";
        if ((st = open_cyclic())) wait_then_own(st, &tr);
        vt_streamer_close(st);
    }
    if (cache) {
        tu_step = "cache: shared with another thread, then held by this one alone";
        if ((st = open_random())) shared_then_own(st, &tc);
        vt_streamer_close(st);
        tu_step = "cache: another thread's release leaves all held by the waiting one";
        if ((st = open_random())) wait_then_own(st, &tc);
        vt_streamer_close(st);
    }
}

/* test_streamer_handles [release|ring|cache]: one group only (all by default). */
int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    vt_test_seed();
    tu_watchdog("test_streamer_handles",
                100); /* a hang, not a speed goal: each step takes milliseconds */
    char dir[4096];
    vt_test_tmpdir("streamer_handles", dir, sizeof dir);
    /* rows of 4096 bytes, 4-row chunks: footprints are exact page counts */
    const uint64_t rows[8] = {90, 6, 8, 8, 8, 8, 8, 8};
    tu_make_rows(&ts, dir, 8, rows, 0, 0, 1024, 16384, 0);
    for (int i = 0; i < 6; i++) cyc[i] = ts.names[2 + i];
    if (!only || !strcmp(only, "release")) {
        other_streamer();
        generations_unique();
        stale_copy();
        hand_made();
        release_twice();
        table_alloc_fails();
    }
    if (!only || strcmp(only, "release")) own_alone(only);
    tu_free(&ts);
    alarm(0);
    return vt_test_done("test_streamer_handles");
}
