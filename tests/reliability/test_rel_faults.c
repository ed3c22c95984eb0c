/* Fault-injection walker over import, gc, verify and streaming. Each operation runs once clean
 * with every hooked call of one kind counted (vt_fault_arm(kind, UINT64_MAX, 0)); then for each
 * site n = 1..count it runs again with the n-th call failing (allocations: -ENOMEM; reads: -EIO
 * and short; writes: -ENOSPC and short; syncs: -EIO; device/pinned allocations: -ENOMEM; the
 * read engine itself, io_uring submit or reaping: -EIO, which the streamer reaps past). After
 * each: the operation returned 0 (the site is tolerated, e.g. a short transfer is resumed) or a
 * negative code with a message; the store opens and verifies clean with exactly the committed
 * contents of before (or, for an import that succeeded, after); data a streamer handed out is
 * never wrong; and the same operation run clean succeeds. Under ASan/LSan the walk also proves
 * nothing leaks on any error path.
 *
 * Sites per (operation, kind, error) are walked exhaustively up to VT_FAULT_MAX_SITES (default
 * 40; 0 = all), evenly spaced beyond that from a random offset. Site counts are printed. */
#include "rel_util.h"
#include "weight_eq.h"
#include "vtstore/tier.h"

static char dir[2048], store[2100], src_a[2100], src_b[2100];
static rel_snap snap_a, snap_ab, snap_gc;
static const char *names_ab[64];
static size_t n_ab;
static uint8_t *raw_ab[64];
static uint64_t rawlen_ab[64];
static long max_sites;
static uint64_t total_sites, total_runs, tolerated, no_message;

#define NA   3
#define NB   4
#define ROWS 48
#define COLS 256

static const vt_store_options store_opt = {
    .chunk_target_bytes = 8 << 10, .shard_cap_bytes = 96 << 10, .zstd_level = 1};

static int do_import_b(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR, &store_opt, &s);
    if (rc) return rc;
    vt_import_options o;
    vt_import_options_init(&o);
    vt_import_rule r[2] = {{"b.0", VT_FMT_Q8_0}, {"b.1", VT_FMT_NF4}};
    o.rules = r;
    o.n_rules = 2;
    o.nthreads = 2;
    rc = vt_import_file(s, src_b, &o, NULL);
    vt_store_close(s);
    return rc;
}

static int remove_pat(const char *pat) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR, &store_opt, &s);
    if (rc) return rc;
    rc = vt_store_remove(s, pat, NULL);
    vt_store_close(s);
    return rc;
}

static int do_remove_b(void) {
    return remove_pat("b.*");
}

/* gc's starting state: half of B removed, so B's shards hold live chunks and garbage and gc
 * has to copy (compact), not only delete */
static int do_half_b(void) {
    return remove_pat("b.[02]");
}

static int do_gc(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDWR, &store_opt, &s);
    if (rc) return rc;
    rc = vt_store_gc(s, NULL);
    vt_store_close(s);
    return rc;
}

static int do_verify(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDONLY, NULL, &s);
    if (rc) return rc;
    rc = vt_store_verify(s, NULL, NULL, NULL);
    vt_store_close(s);
    return rc;
}

static uint64_t wrong_bytes;

/* Two cyclic passes over A+B with budgets smaller than the model (pinned + streamed tensors),
 * comparing every handle's bytes with the committed ones. */
static int do_stream(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDONLY, NULL, &s);
    if (rc) return rc;
    vt_tier_config c = {.vram_bytes = 160 << 10,
                        .ram_bytes = 256 << 10,
                        .prefetch = 2,
                        .ring_slots = 3,
                        .io_engine = VT_IO_PREAD};
    const char *eng = getenv("VT_REL_ENGINE");
    if (eng && !strcmp(eng, "uring")) c.io_engine = VT_IO_URING;
    vt_streamer *st = NULL;
    rc = vt_streamer_open(s, &c, &st);
    if (!rc) rc = vt_streamer_plan(st, names_ab, n_ab, VT_SCHEDULE_CYCLIC);
    for (int p = 0; p < 2 && !rc; p++)
        for (size_t i = 0; i < n_ab && !rc; i++) {
            vt_weight w;
            rc = vt_streamer_acquire(st, names_ab[i], &w);
            if (rc) break;
            if (w.bytes != rawlen_ab[i] || !vt_test_weight_eq(&w, raw_ab[i], w.bytes))
                wrong_bytes++;
            rc = vt_streamer_release(st, &w);
        }
    vt_streamer_close(st);
    vt_store_close(s);
    return rc;
}

/* ---- states the operations start from ---- */

static void state_ab(void) {
    /* store holds A and B, no garbage */
}

static int garbage_zero(void) {
    vt_store *s;
    int rc = vt_store_open(store, VT_STORE_RDONLY, NULL, &s);
    if (rc) return 0;
    vt_store_totals t;
    rc = vt_store_get_totals(s, &t);
    vt_store_close(s);
    return !rc && t.garbage_bytes == 0 && t.orphan_files == 0;
}

typedef struct op_def {
    const char *name;
    int (*run)(void);
    /* bring the store from "A + B, no garbage" to the op's starting state */
    void (*enter)(void);
} op_def;

static void enter_import(void) {
    CHECK_RC(do_remove_b());
    CHECK_RC(do_gc());
}
static void enter_gc(void) {
    CHECK_RC(do_half_b());
}

/* Check after a faulty run of @p op that returned @p rc, then run it clean and restore the
 * starting state. */
static void after(const op_def *op, int rc, const char *what) {
    int fired = vt_fault_fired();
    total_runs++;
    if (rc == 0 && fired) tolerated++;
    CHECKF(rc <= 0, "%s: positive return %d", what, rc);
    if (rc < 0 && !vt_last_error()[0]) { /* every error must say what failed */
        no_message++;
        CHECKF(0, "%s: %s without a message", what, vt_strerror(rc));
    }
    if (rc == 0 && fired) printf("%s: tolerated\n", what);
    rel_snap sn;
    int ok = rel_open_check(store, &sn, what) == 0;
    CHECKF(ok, "%s: store does not open/verify after rc %d (%s)", what, rc, vt_strerror(rc));
    if (!ok) return;
    int is_import = op->run == do_import_b;
    const rel_snap *want = is_import          ? (rc ? &snap_a : &snap_ab)
                           : op->run == do_gc ? &snap_gc
                                              : &snap_ab;
    CHECKF(rel_snap_equal(want, &sn, what), "%s: committed contents changed (rc %d %s: %s)", what,
           rc, vt_strerror(rc), vt_last_error());
    rel_snap_free(&sn);
    /* the same operation, clean, now succeeds */
    if (is_import) {
        if (rc)
            CHECKF(do_import_b() == 0, "%s: clean import after the fault: %s", what,
                   vt_last_error());
        CHECK_RC(do_remove_b());
        CHECK_RC(do_gc());
        CHECKF(garbage_zero(), "%s: garbage left after gc", what);
    } else if (op->run == do_gc) {
        CHECKF(do_gc() == 0, "%s: clean gc after the fault: %s", what, vt_last_error());
        CHECKF(garbage_zero(), "%s: garbage left after gc", what);
        CHECK_RC(do_remove_b());
        CHECK_RC(do_import_b());
        CHECK_RC(do_half_b());
    } else {
        int r2 = op->run();
        CHECKF(r2 == 0, "%s: clean run after the fault: %d %s", what, r2, vt_last_error());
    }
}

static void walk(const op_def *op, unsigned kind, int err, const char *kname) {
    op->enter();
    vt_fault_arm(kind, UINT64_MAX, 0);
    int rc = op->run();
    uint64_t count = vt_fault_count();
    vt_fault_disarm();
    CHECKF(rc == 0, "%s clean run: %d %s", op->name, rc, vt_last_error());
    /* restore the starting state after the clean run */
    if (op->run == do_import_b) {
        CHECK_RC(do_remove_b());
        CHECK_RC(do_gc());
    } else if (op->run == do_gc) {
        CHECK_RC(do_remove_b());
        CHECK_RC(do_import_b());
        CHECK_RC(do_half_b());
    }
    uint64_t step = 1, walked = 0;
    if (max_sites > 0 && count > (uint64_t)max_sites) step = (count + max_sites - 1) / max_sites;
    uint64_t fails = 0, tol0 = tolerated;
    /* sampled walks start at a random offset within the stride, so repeated runs (new seed
     * each) cover every site over time; site 1 is always walked */
    uint64_t first = step > 1 ? 1 + vt_rand_u64() % step : 1;
    for (uint64_t n = 1; n <= count; n = n == 1 && first > 1 ? first : n + step) {
        char what[200];
        snprintf(what, sizeof what, "%s %s site %llu/%llu", op->name, kname, (unsigned long long)n,
                 (unsigned long long)count);
        vt_clear_error();
        if (getenv("VT_FAULT_TRACE")) printf("%s\n", what);
        vt_fault_arm(kind, n, err);
        rc = op->run();
        vt_fault_disarm();
        fails += rc != 0;
        after(op, rc, what);
        walked++;
        if (vt_test_failures > 20) break;
    }
    if (op->run == do_import_b) { /* back to A + B */
        CHECK_RC(do_import_b());
    } else if (op->run == do_gc) {
        CHECK_RC(do_remove_b());
        CHECK_RC(do_gc());
        CHECK_RC(do_import_b());
    }
    total_sites += count;
    printf("%-7s %-12s sites %5llu walked %4llu  errors %4llu  tolerated %llu\n", op->name, kname,
           (unsigned long long)count, (unsigned long long)walked, (unsigned long long)fails,
           (unsigned long long)(tolerated - tol0));
}

static int collect(void *ctx, const vt_tensor_info *ti) {
    (void)ctx;
    names_ab[n_ab] = strdup(ti->name);
    rawlen_ab[n_ab] = ti->raw_bytes;
    n_ab++;
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    vt_test_seed();
    max_sites = rel_env_long("VT_FAULT_MAX_SITES", 40);
    vt_test_tmpdir("rel_faults", dir, sizeof dir);
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(src_a, sizeof src_a, "%s/a.safetensors", dir);
    snprintf(src_b, sizeof src_b, "%s/b.safetensors", dir);
    CHECK_RC(rel_write_st(src_a, "a.", NULL, NA, ROWS, COLS, 1));
    CHECK_RC(rel_write_st(src_b, "b.", NULL, NB, ROWS, COLS, 2));
    vt_store *s;
    CHECK_RC(vt_store_open(store, VT_STORE_RDWR | VT_STORE_CREATE, &store_opt, &s));
    if (!s) return vt_test_done("test_rel_faults");
    CHECK_RC(vt_import_file(s, src_a, NULL, NULL));
    vt_store_close(s);
    CHECK_RC(rel_open_check(store, &snap_a, "after import A"));
    CHECK_RC(do_import_b());
    CHECK_RC(rel_open_check(store, &snap_ab, "after import B"));
    CHECK_RC(do_half_b());
    CHECK_RC(rel_open_check(store, &snap_gc, "after removing half of B"));
    CHECK_RC(do_remove_b());
    CHECK_RC(do_gc());
    CHECK_RC(do_import_b());
    CHECK(snap_a.n == NA && snap_ab.n == NA + NB && snap_gc.n == NA + NB / 2);
    CHECK_RC(vt_store_open(store, VT_STORE_RDONLY, NULL, &s));
    if (!s || vt_test_failures) return vt_test_done("test_rel_faults");
    CHECK_RC(vt_store_list(s, NULL, collect, NULL));
    for (size_t i = 0; i < n_ab; i++) {
        raw_ab[i] = malloc(rawlen_ab[i]);
        CHECK_RC(vt_store_read_tensor_raw(s, names_ab[i], raw_ab[i], rawlen_ab[i]));
    }
    vt_store_close(s);

    const op_def ops[] = {
        {"import", do_import_b, enter_import},
        {"gc", do_gc, enter_gc},
        {"verify", do_verify, state_ab},
        {"stream", do_stream, state_ab},
    };
    struct {
        unsigned kind;
        int err;
        const char *name;
    } faults[] = {
        {VT_FAULT_ALLOC, -ENOMEM, "alloc/ENOMEM"},       {VT_FAULT_READ, -EIO, "read/EIO"},
        {VT_FAULT_READ, VT_FAULT_SHORT, "read/short"},   {VT_FAULT_WRITE, -ENOSPC, "write/ENOSPC"},
        {VT_FAULT_WRITE, VT_FAULT_SHORT, "write/short"}, {VT_FAULT_SYNC, -EIO, "sync/EIO"},
        {VT_FAULT_DEVICE, -ENOMEM, "device/ENOMEM"},     {VT_FAULT_ENGINE, -EIO, "engine/EIO"},
    };
    const char *only = argc > 1 ? argv[1] : getenv("VT_FAULT_OPS"); /* e.g. "import,gc" */
    for (size_t o = 0; o < sizeof ops / sizeof *ops; o++) {
        if (only && !strstr(only, ops[o].name)) continue;
        for (size_t f = 0; f < sizeof faults / sizeof *faults; f++) {
            if ((faults[f].kind == VT_FAULT_DEVICE || faults[f].kind == VT_FAULT_ENGINE) &&
                ops[o].run != do_stream)
                continue;
            const char *kinds = getenv("VT_FAULT_KINDS"); /* e.g. "read,device" */
            if (kinds) {
                char k[16];
                snprintf(k, sizeof k, "%.*s", (int)strcspn(faults[f].name, "/"), faults[f].name);
                if (!strstr(kinds, k)) continue;
            }
            walk(&ops[o], faults[f].kind, faults[f].err, faults[f].name);
        }
    }
    CHECKF(wrong_bytes == 0, "streamer handed out %llu handles with wrong bytes",
           (unsigned long long)wrong_bytes);
    printf("total: %llu hooked sites counted, %llu faulty runs, %llu tolerated, %llu errors "
           "without a message\n",
           (unsigned long long)total_sites, (unsigned long long)total_runs,
           (unsigned long long)tolerated, (unsigned long long)no_message);
    for (size_t i = 0; i < n_ab; i++) {
        free(raw_ab[i]);
        free((void *)names_ab[i]);
    }
    rel_snap_free(&snap_a);
    rel_snap_free(&snap_ab);
    rel_snap_free(&snap_gc);
    if (!vt_test_failures) rel_sh("rm -rf '%s'", dir);
    return vt_test_done("test_rel_faults");
}
