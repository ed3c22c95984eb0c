/* Corruption: random damage to a copy of an imported store, then (in a child process, so a crash
 * or hang is caught and counted) open + verify + read back every tensor against the pristine
 * contents. Damage kinds, in turn:
 *   chunk-bit   one bit flipped inside a live chunk's stored bytes: verify must report that
 *               tensor and chunk, and reading the tensor must fail (VT_ECORRUPT);
 *   shard-bit   one bit flipped anywhere in a shard file (header, chunks, padding);
 *   shard-cut   a shard truncated at a random length: detected whenever a live chunk is cut;
 *   mdb-bit     one bit flipped anywhere in the LMDB data file;
 *   mdb-page    a random 4096-byte page of the LMDB data file overwritten with random bytes;
 *   mdb-cut     the LMDB data file truncated.
 * Every run must end without a crash or hang, and no read may return wrong tensor bytes without
 * an error. Index damage is caught at open by the index checksum (index/data.xxh) before LMDB
 * walks a damaged page; outcomes are counted and printed per kind.
 * Iterations: VT_CORRUPT_ITERS (default 120). VT_CORRUPT_NOSUM=1 deletes index/data.xxh from
 * each copy (a store of an older vtstore: LMDB crashes expected, so with VT_CORRUPT_STRICT=0). */
#include "rel_util.h"

#define NT 6

static char dir[2048], pristine[2100], work[2100], src[2100];
static rel_snap snap;

enum outcome {
    O_HARMLESS = 0, /* everything reads back equal, verify clean */
    O_OPEN = 10,    /* open refused the store */
    O_VERIFY = 11,  /* verify reported a problem */
    O_READ = 12,    /* only a read failed (verify clean) */
    O_SILENT = 20,  /* a read returned wrong tensor bytes without an error */
    O_META = 21,    /* listing/records differ (metadata) but no error anywhere */
    O_MISSED = 22,  /* kind chunk-bit/shard-cut not reported where it had to be */
};

typedef struct damage {
    int kind;
    char tensor[VT_MAX_NAME]; /* chunk-bit: where the flip landed */
    int64_t chunk;
    int must_detect;
} damage;

static const char *kind_name[] = {"chunk-bit", "shard-bit", "shard-cut",
                                  "mdb-bit",   "mdb-page",  "mdb-cut"};

typedef struct vctx {
    const damage *d;
    int named;
    uint64_t n;
} vctx;

static void on_problem(void *ctx, const vt_verify_problem *p) {
    vctx *v = ctx;
    v->n++;
    if (v->d->kind == 0 && !strcmp(p->tensor, v->d->tensor) && p->chunk == v->d->chunk)
        v->named = 1;
    if (getenv("VT_CORRUPT_TRACE")) fprintf(stderr, "  problem: %s\n", p->message);
}

static int child(const damage *d) {
    alarm(20); /* a hang is a failure */
    vt_store *s;
    int rc = vt_store_open(work, VT_STORE_RDONLY, NULL, &s);
    if (rc) return O_OPEN;
    vctx v = {d, 0, 0};
    vt_verify_report rep;
    rc = vt_store_verify(s, on_problem, &v, &rep);
    int verified_bad = rc != 0;
    /* read back everything the pristine store had */
    int read_err = 0, wrong = 0;
    for (size_t i = 0; i < snap.n; i++) {
        vt_tensor_info ti;
        if (vt_store_stat(s, snap.e[i].name, &ti)) {
            read_err = 1;
            continue;
        }
        size_t cap = ti.raw_bytes < (1u << 26) ? ti.raw_bytes : 0;
        uint8_t *b = malloc(cap + 1);
        rc = vt_store_read_tensor_raw(s, snap.e[i].name, b, cap);
        if (rc) {
            read_err = 1;
        } else {
            uint64_t h = 1469598103934665603ull;
            for (uint64_t k = 0; k < ti.raw_bytes; k++) h = (h ^ b[k]) * 1099511628211ull;
            if (h != snap.e[i].hash || ti.raw_bytes != snap.e[i].raw_bytes) wrong = 1;
        }
        free(b);
    }
    rel_snap now;
    int srs = rel_snapshot(s, &now);
    int same_list = srs == 0 && now.n == snap.n;
    for (size_t i = 0; same_list && i < now.n; i++)
        same_list = !strcmp(now.e[i].name, snap.e[i].name) && now.e[i].format == snap.e[i].format;
    rel_snap_free(&now);
    vt_store_close(s);
    if (d->kind == 0 && (!v.named || !read_err)) return O_MISSED;
    if (d->must_detect && !verified_bad && !read_err) return O_MISSED;
    if (wrong && !verified_bad) return O_SILENT;
    if (verified_bad) return O_VERIFY;
    if (read_err || srs) return O_READ;
    if (!same_list) return O_META;
    return O_HARMLESS;
}

typedef struct live_chunk {
    char tensor[VT_MAX_NAME];
    uint64_t index;
    char shard[1100];
    uint64_t off, len;
} live_chunk;

static live_chunk chunks[512];
static size_t n_chunks;

static int collect(void *ctx, const vt_tensor_info *ti) {
    vt_store *s = ctx;
    vt_chunk_info ci[64];
    uint64_t n = 0;
    CHECK_RC(vt_store_chunks(s, ti->name, ci, 64, &n));
    for (uint64_t i = 0; i < n && n_chunks < 512; i++) {
        live_chunk *c = &chunks[n_chunks++];
        snprintf(c->tensor, sizeof c->tensor, "%s", ti->name);
        c->index = i;
        char p[4096];
        CHECK_RC(vt_store_shard_path(s, ci[i].shard_id, p, sizeof p));
        /* path relative to the store: the damage goes to the copy */
        char real[4096];
        CHECK(realpath(pristine, real) != NULL);
        CHECK(!strncmp(p, real, strlen(real)));
        snprintf(c->shard, sizeof c->shard, "%s", p + strlen(real));
        c->off = ci[i].offset;
        c->len = ci[i].stored_len;
    }
    return 0;
}

static uint64_t file_size(const char *p) {
    struct stat st;
    return stat(p, &st) ? 0 : (uint64_t)st.st_size;
}

static void flip_bit(const char *p, uint64_t off) {
    int fd = open(p, O_RDWR);
    uint8_t b = 0;
    if (fd < 0 || pread(fd, &b, 1, (off_t)off) != 1) {
        fprintf(stderr, "flip %s@%llu failed\n", p, (unsigned long long)off);
        vt_test_failures++;
    } else {
        b ^= (uint8_t)(1u << (vt_rand_u64() % 8));
        if (pwrite(fd, &b, 1, (off_t)off) != 1) vt_test_failures++;
    }
    if (fd >= 0) close(fd);
}

/* a random shard file of the copy */
static void random_shard(char *out, size_t cap) {
    live_chunk *c = &chunks[vt_rand_u64() % n_chunks];
    snprintf(out, cap, "%s%s", work, c->shard);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    vt_test_seed();
    long iters = rel_env_long("VT_CORRUPT_ITERS", 120);
    vt_test_tmpdir("rel_corrupt", dir, sizeof dir);
    snprintf(pristine, sizeof pristine, "%s/pristine", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    snprintf(src, sizeof src, "%s/src.safetensors", dir);
    CHECK_RC(rel_write_st(src, "w.", NULL, NT, 64, 384, 1));
    vt_store_options o = {
        .chunk_target_bytes = 16 << 10, .shard_cap_bytes = 128 << 10, .zstd_level = 3};
    vt_store *s;
    CHECK_RC(vt_store_open(pristine, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return vt_test_done("test_rel_corrupt");
    vt_import_options io;
    vt_import_options_init(&io);
    vt_import_rule r[2] = {{"w.[01]", VT_FMT_Q8_0}, {"w.2", VT_FMT_NF4}};
    io.rules = r;
    io.n_rules = 2;
    CHECK_RC(vt_import_file(s, src, &io, NULL));
    CHECK_RC(rel_snapshot(s, &snap));
    CHECK_RC(vt_store_list(s, NULL, collect, s));
    vt_store_close(s);
    CHECK(snap.n == NT && n_chunks > NT);
    if (vt_test_failures) return vt_test_done("test_rel_corrupt");
    char mdb[2200];
    snprintf(mdb, sizeof mdb, "%s/index/data.mdb", work);

    /* VT_CORRUPT_KINDS: digits of the kinds to run (default all: "012345") */
    const char *ks = getenv("VT_CORRUPT_KINDS");
    int kinds[6], n_kinds = 0;
    for (const char *c = ks && *ks ? ks : "012345"; *c && n_kinds < 6; c++)
        if (*c >= '0' && *c <= '5') kinds[n_kinds++] = *c - '0';
    long count[6][23];
    memset(count, 0, sizeof count);
    long crashes = 0, lmdb_crashes[6] = {0};
    for (long it = 0; it < iters && vt_test_failures < 50; it++) {
        damage d;
        memset(&d, 0, sizeof d);
        d.kind = kinds[it % n_kinds];
        d.chunk = -1;
        if (rel_sh("rm -rf '%s' && cp -a --sparse=always '%s' '%s'", work, pristine, work)) {
            CHECK(!"copy");
            break;
        }
        char p[3300];
        if (rel_env_long("VT_CORRUPT_NOSUM", 0)) { /* as a store of an older vtstore */
            snprintf(p, sizeof p, "%s/index/data.xxh", work);
            unlink(p);
        }
        switch (d.kind) {
        case 0: {
            live_chunk *c = &chunks[vt_rand_u64() % n_chunks];
            snprintf(p, sizeof p, "%s%s", work, c->shard);
            flip_bit(p, c->off + vt_rand_u64() % c->len);
            snprintf(d.tensor, sizeof d.tensor, "%s", c->tensor);
            d.chunk = (int64_t)c->index;
            d.must_detect = 1;
            break;
        }
        case 1:
            random_shard(p, sizeof p);
            flip_bit(p, vt_rand_u64() % file_size(p));
            break;
        case 2: {
            random_shard(p, sizeof p);
            uint64_t cut = vt_rand_u64() % file_size(p);
            CHECK(truncate(p, (off_t)cut) == 0);
            for (size_t i = 0; i < n_chunks; i++) {
                char q[3300];
                snprintf(q, sizeof q, "%s%s", work, chunks[i].shard);
                if (!strcmp(q, p) && chunks[i].off + chunks[i].len > cut) d.must_detect = 1;
            }
            break;
        }
        case 3:
            flip_bit(mdb, vt_rand_u64() % file_size(mdb));
            break;
        case 4: {
            uint64_t pages = file_size(mdb) / 4096;
            uint8_t page[4096];
            for (int i = 0; i < 4096; i++) page[i] = (uint8_t)vt_rand_u64();
            int fd = open(mdb, O_RDWR);
            CHECK(fd >= 0 && pwrite(fd, page, 4096, (off_t)(vt_rand_u64() % pages) * 4096) == 4096);
            if (fd >= 0) close(fd);
            break;
        }
        case 5:
            CHECK(truncate(mdb, (off_t)(vt_rand_u64() % file_size(mdb))) == 0);
            break;
        }
        pid_t pid = fork();
        if (pid == 0) _exit(child(&d));
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st)) {
            /* LMDB trusts its pages (SIGBUS/SIGSEGV on a damaged B-tree); the index checksum
             * must refuse such an index at open. VT_CORRUPT_STRICT=0 counts crashes inside
             * LMDB instead of failing (to measure a store without index/data.xxh). */
            int lmdb = d.kind == 3 || d.kind == 4;
            crashes++;
            lmdb_crashes[d.kind] += lmdb;
            if (!lmdb || rel_env_long("VT_CORRUPT_STRICT", 1))
                CHECKF(0, "iteration %ld (%s): checker died with signal %d", it, kind_name[d.kind],
                       WIFSIGNALED(st) ? WTERMSIG(st) : -1);
            continue;
        }
        int oc = WEXITSTATUS(st);
        if (oc > 22) oc = 22;
        count[d.kind][oc]++;
        CHECKF(oc != O_SILENT, "iteration %ld (%s): wrong bytes returned without an error", it,
               kind_name[d.kind]);
        CHECKF(oc != O_MISSED, "iteration %ld (%s%s%s): damage not detected (or not named)", it,
               kind_name[d.kind], d.kind == 0 ? " in " : "", d.tensor);
    }
    printf("%-10s %8s %8s %8s %8s %8s %8s %8s %8s\n", "damage", "harmless", "open", "verify",
           "read", "meta", "SILENT", "MISSED", "crash");
    for (int k = 0; k < 6; k++)
        printf("%-10s %8ld %8ld %8ld %8ld %8ld %8ld %8ld %8ld\n", kind_name[k],
               count[k][O_HARMLESS], count[k][O_OPEN], count[k][O_VERIFY], count[k][O_READ],
               count[k][O_META], count[k][O_SILENT], count[k][O_MISSED], lmdb_crashes[k]);
    printf("%ld iterations, %ld crashes or hangs (%ld inside LMDB on index damage)\n", iters,
           crashes, lmdb_crashes[3] + lmdb_crashes[4]);
    rel_snap_free(&snap);
    if (!vt_test_failures) rel_sh("rm -rf '%s'", dir);
    return vt_test_done("test_rel_corrupt");
}
