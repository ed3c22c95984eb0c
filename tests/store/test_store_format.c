/* Store format versions (docs/FORMAT.md sections 3.3, 8). In a format-2 store a chunk's checksum
 * is seeded with the hash of its record key, so a chunk record that names another chunk's bytes
 * (another chunk of the same tensor, or of another tensor) fails its check on every read path
 * and in verify, and a format-1 record in a format-2 store is refused. A format-1 store written
 * by vtstore 0.1 (tests/store/data/store_v1.tar.gz, made by make_store_v1.py) reads back
 * byte-exact, and what a new vtstore writes into it (tensors, gc) stays format 1 until
 * vt_store_upgrade (and `vtstore upgrade`) rewrites it as format 2. */
#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "store_rawidx.h"
#include "store_testutil.h"

typedef struct probs {
    int n;
    char msg[1200];
} probs;
static void on_problem(void *ctx, const vt_verify_problem *p) {
    probs *pr = ctx;
    if (pr->n++ == 0) snprintf(pr->msg, sizeof pr->msg, "%s", p->message);
    printf("  verify: %s\n", p->message);
}

static int verify_problems(vt_store *s, probs *pr) {
    memset(pr, 0, sizeof *pr);
    vt_verify_report rep;
    int rc = vt_store_verify(s, on_problem, pr, &rep);
    return rc ? (int)rep.problems : 0;
}

/* The raw chunk record of (tensor id, index) of the store at @p path. */
static void rec_get(const char *path, uint64_t tid, uint64_t idx, uint8_t rec[ST_CHUNK_REC_LEN]) {
    uint8_t key[16];
    size_t len = 0;
    st_chunk_key(tid, idx, key);
    CHECK(raw_get(path, "chunks", key, 16, rec, ST_CHUNK_REC_LEN, &len) == 0 &&
          len == ST_CHUNK_REC_LEN);
}
static void rec_put(const char *path, uint64_t tid, uint64_t idx,
                    const uint8_t rec[ST_CHUNK_REC_LEN]) {
    uint8_t key[16];
    st_chunk_key(tid, idx, key);
    CHECK(raw_put(path, "chunks", key, 16, rec, ST_CHUNK_REC_LEN) == 0);
}
/* Copy where a record's bytes are and what they hash to (codec, shard, offset, stored_len,
 * checksum) from @p from into @p to; row0, rows and raw_len stay. */
static void rec_take_location(uint8_t to[ST_CHUNK_REC_LEN], const uint8_t from[ST_CHUNK_REC_LEN]) {
    memcpy(to + 1, from + 1, 23);
    memcpy(to + 48, from + 48, 8);
}

/* Chunks 0 and 1 of tensor @p tid (records @p r0, @p r1) trade locations and checksums. */
static void swap_locations(const char *path, uint64_t tid, const uint8_t r0[ST_CHUNK_REC_LEN],
                           const uint8_t r1[ST_CHUNK_REC_LEN]) {
    uint8_t a[ST_CHUNK_REC_LEN], b[ST_CHUNK_REC_LEN];
    memcpy(a, r0, sizeof a);
    memcpy(b, r1, sizeof b);
    rec_take_location(a, r1);
    rec_take_location(b, r0);
    rec_put(path, tid, 0, a);
    rec_put(path, tid, 1, b);
}

static uint32_t shard_header_version(vt_store *s, uint32_t shard_id) {
    char sp[4400];
    CHECK_RC(vt_store_shard_path(s, shard_id, sp, sizeof sp));
    uint8_t h[16] = {0};
    int fd = open(sp, O_RDONLY);
    CHECK(fd >= 0 && pread(fd, h, sizeof h, 0) == (ssize_t)sizeof h);
    if (fd >= 0) close(fd);
    return st_le32(h + 8);
}

/* Read chunk @p idx of @p name expecting VT_ECORRUPT "checksum mismatch" naming the chunk. */
static void expect_mismatch(vt_store *s, const char *name, uint64_t idx, void *buf, size_t cap) {
    char want[64];
    snprintf(want, sizeof want, "tensor %s chunk %llu", name, (unsigned long long)idx);
    int rc = vt_store_read_chunk(s, name, idx, buf, cap, NULL);
    printf("  read: %s\n", vt_store_errmsg(s));
    CHECKF(rc == VT_ECORRUPT && strstr(vt_store_errmsg(s), want) &&
               strstr(vt_store_errmsg(s), "checksum mismatch"),
           "rc %d: %s", rc, vt_store_errmsg(s));
    CHECK(vt_store_read_tensor_raw(s, name, buf, cap) == VT_ECORRUPT);
    /* a reader with its own I/O: the record's bytes under the record's seed */
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(s, name, idx, &ci));
    int fd = -1;
    CHECK_RC(vt_store_shard_open(s, ci.shard_id, 0, &fd));
    void *stored = malloc(ci.stored_len), *dst = malloc(ci.raw_len);
    CHECK(fd >= 0 && pread(fd, stored, ci.stored_len, (off_t)ci.offset) == (ssize_t)ci.stored_len);
    CHECK(vt_store_chunk_decode(s, &ci, stored, dst, ci.raw_len) == VT_ECORRUPT);
    free(stored);
    free(dst);
    if (fd >= 0) close(fd);
}

static void test_v2(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/v2.vts", dir);
    vt_store_options o = {0};
    o.chunk_target_bytes = 8 << 10;
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR | VT_STORE_CREATE, &o, &s));
    if (!s) return;
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "t0", 1, 64, 200, 0));
    CHECK_RC(tu_put_gen(w, "t1", 1, 64, 200, 0));
    CHECK_RC(vt_store_writer_commit(w));
    vt_store_totals tot;
    CHECK_RC(vt_store_get_totals(s, &tot));
    CHECK(tot.format_version == VT_STORE_FORMAT_VERSION && VT_STORE_FORMAT_VERSION == 2);
    vt_tensor_info t0, t1;
    CHECK_RC(vt_store_stat(s, "t0", &t0));
    CHECK_RC(vt_store_stat(s, "t1", &t1));
    CHECK(t0.n_chunks >= 4 && t0.n_chunks == t1.n_chunks);
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(s, "t0", 1, &ci));
    CHECK(ci.checksum_seed == st_chunk_seed(2, t0.id, 1) && ci.checksum_seed != 0);
    CHECK(shard_header_version(s, ci.shard_id) == 2);
    CHECK_RC(vt_store_verify(s, NULL, NULL, NULL));
    vt_store_close(s);
    uint8_t r0[ST_CHUNK_REC_LEN], r1[ST_CHUNK_REC_LEN], u2[ST_CHUNK_REC_LEN],
        save[ST_CHUNK_REC_LEN];
    rec_get(path, t0.id, 0, r0);
    rec_get(path, t0.id, 1, r1);
    rec_get(path, t1.id, 2, u2);
    CHECK(r0[0] == 2 && r1[0] == 2);
    size_t cap = t0.raw_bytes;
    void *buf = malloc(cap);
    probs pr;

    /* chunks 0 and 1 of t0 (same size) trade locations and checksums: format 1 read them
     * back in each other's places without an error */
    swap_locations(path, t0.id, r0, r1);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    expect_mismatch(s, "t0", 0, buf, cap);
    expect_mismatch(s, "t0", 1, buf, cap);
    CHECK(verify_problems(s, &pr) == 2 && strstr(pr.msg, "checksum mismatch"));
    vt_store_close(s);
    rec_put(path, t0.id, 0, r0);
    rec_put(path, t0.id, 1, r1);

    /* t0's chunk 2 names t1's chunk 2 (same rows, same length, other bytes) */
    rec_get(path, t0.id, 2, save);
    uint8_t a[ST_CHUNK_REC_LEN];
    memcpy(a, save, sizeof a);
    rec_take_location(a, u2);
    rec_put(path, t0.id, 2, a);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    expect_mismatch(s, "t0", 2, buf, cap);
    CHECK(verify_problems(s, &pr) >= 1 && strstr(pr.msg, "t0"));
    uint32_t gen = 0;
    CHECK(tu_check_gen(s, "t1", &gen) == 0 && gen == 1);
    vt_store_close(s);
    rec_put(path, t0.id, 2, save);

    /* a format-1 record (its checksum unseeded, so it would pass) in a format-2 store */
    memcpy(a, r1, sizeof a);
    a[0] = 1;
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    CHECK_RC(vt_store_chunk_info(s, "t0", 1, &ci));
    void *stored = malloc(ci.stored_len);
    int fd = -1;
    CHECK_RC(vt_store_shard_open(s, ci.shard_id, 0, &fd));
    CHECK(fd >= 0 && pread(fd, stored, ci.stored_len, (off_t)ci.offset) == (ssize_t)ci.stored_len);
    if (fd >= 0) close(fd);
    vt_store_close(s);
    ci.checksum_seed = 0;
    st_put_le64(a + 48, st_chunk_sum(&ci, stored));
    free(stored);
    rec_put(path, t0.id, 1, a);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    int rc = vt_store_read_chunk(s, "t0", 1, buf, cap, NULL);
    printf("  v1 record: %s\n", vt_store_errmsg(s));
    CHECK(rc == VT_EFORMAT && strstr(vt_store_errmsg(s), "record version 1 in a store of format "
                                                         "version 2"));
    CHECK(verify_problems(s, &pr) >= 1);
    vt_store_close(s);
    rec_put(path, t0.id, 1, r1);

    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    CHECK(verify_problems(s, &pr) == 0);
    CHECK(tu_check_gen(s, "t0", &gen) == 0 && gen == 1);
    vt_store_close(s);
    free(buf);
}

/* The values make_store_v1.py gave each tensor. */
static void v1_source(const char *name, float *x, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (!strcmp(name, "a"))
            x[i] =
                (float)((double)((int64_t)((i * 7919) % 1000) - 500) / 250.0 * (double)(1 + i % 5));
        else if (!strcmp(name, "b"))
            x[i] = (float)((double)((int64_t)(i % 16) - 8) * 0.25);
        else
            x[i] = (float)((double)((int64_t)i - 25) / 8.0);
    }
}

/* Tensor @p name of the v1 fixture reads back as its source quantized now. */
static void check_v1_tensor(vt_store *s, const char *name, uint32_t fmt) {
    vt_tensor_info ti;
    CHECK_RC(vt_store_stat(s, name, &ti));
    CHECK(ti.format == fmt);
    float *x = malloc(ti.rows * ti.cols * sizeof(float));
    v1_source(name, x, ti.rows * ti.cols);
    size_t n = vt_quant_bytes(fmt, ti.rows, ti.cols);
    uint8_t *want = malloc(n), *got = malloc(ti.raw_bytes);
    vt_quant_params qp;
    vt_quant_params_init(&qp);
    CHECK_RC(vt_quantize(fmt, &qp, x, ti.rows, ti.cols, want, 1));
    CHECK_RC(vt_store_read_tensor_raw(s, name, got, ti.raw_bytes));
    CHECKF(ti.raw_bytes == n && memcmp(want, got, n) == 0, "tensor %s", name);
    free(x);
    free(want);
    free(got);
}

/* Extract the v1 fixture as @p dir/@p name. */
static void v1_copy(const char *dir, const char *name, char *path, size_t cap) {
    const char *src = getenv("VT_SOURCE_DIR");
    if (!src) src = ".";
    char cmd[13000];
    snprintf(cmd, sizeof cmd,
             "rm -rf '%s/v1' '%s/%s' && tar -xzf '%s/tests/store/data/store_v1.tar.gz' -C '%s' && "
             "mv '%s/v1' '%s/%s'",
             dir, dir, name, src, dir, dir, dir, name);
    CHECK(system(cmd) == 0);
    snprintf(path, cap, "%s/%s", dir, name);
}

static void test_v1(const char *dir) {
    char path[4200];
    v1_copy(dir, "old", path, sizeof path);
    vt_store *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return;
    vt_store_totals tot;
    CHECK_RC(vt_store_get_totals(s, &tot));
    CHECK(tot.format_version == 1 && tot.tensors == 3);
    probs pr;
    CHECK(verify_problems(s, &pr) == 0);
    check_v1_tensor(s, "a", VT_FMT_Q8_0);
    check_v1_tensor(s, "b", VT_FMT_NF4);
    check_v1_tensor(s, "c", VT_FMT_F32);
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(s, "a", 1, &ci));
    CHECK(ci.checksum_seed == 0);

    /* what this vtstore adds to a format-1 store is format 1 */
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(s, &w));
    CHECK_RC(tu_put_gen(w, "n", 3, 50, 120, 8));
    CHECK_RC(vt_store_writer_commit(w));
    vt_tensor_info tn;
    CHECK_RC(vt_store_stat(s, "n", &tn));
    CHECK_RC(vt_store_chunk_info(s, "n", 0, &ci));
    CHECK(ci.checksum_seed == 0);
    CHECK(shard_header_version(s, ci.shard_id) == 1);
    CHECK(verify_problems(s, &pr) == 0);
    CHECK_RC(vt_store_remove(s, "a", NULL));
    vt_store_gc_stats gs;
    CHECK_RC(vt_store_gc(s, &gs));
    CHECK(gs.chunks_moved > 0);
    CHECK(verify_problems(s, &pr) == 0);
    check_v1_tensor(s, "b", VT_FMT_NF4);
    check_v1_tensor(s, "c", VT_FMT_F32);
    uint32_t gen = 0;
    CHECK(tu_check_gen(s, "n", &gen) == 0 && gen == 3);
    CHECK_RC(vt_store_chunk_info(s, "b", 0, &ci));
    CHECK(shard_header_version(s, ci.shard_id) == 1); /* gc's new shard */
    CHECK_RC(vt_store_get_totals(s, &tot));
    CHECK(tot.format_version == 1);
    vt_store_close(s);
    uint8_t rec[ST_CHUNK_REC_LEN];
    rec_get(path, tn.id, 0, rec);
    CHECK(rec[0] == 1);
}

static uint64_t file_hash(const char *path) {
    FILE *f = fopen(path, "rb");
    uint64_t h = 1469598103934665603ull;
    int c;
    CHECK(f != NULL);
    while (f && (c = fgetc(f)) != EOF) h = (h ^ (uint8_t)c) * 1099511628211ull;
    if (f) fclose(f);
    return h;
}

/* vt_store_upgrade: format 1 -> 2 in place; handles opened before keep working and write the
 * new format; the swap that format 1 missed is caught afterwards; a damaged chunk, a running
 * writer or a read-only handle leave the store as it was. */
static void test_upgrade(const char *dir) {
    char path[4200];
    v1_copy(dir, "up", path, sizeof path);
    vt_store *old_ro, *old_rw, *s;
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &old_ro));
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &old_rw));
    if (!old_ro || !old_rw) return;
    vt_store_upgrade_stats us;
    CHECK(vt_store_upgrade(old_ro, &us) == -EBADF);
    vt_store_writer *w;
    CHECK_RC(vt_store_writer_begin(old_rw, &w));
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    CHECK(vt_store_upgrade(s, &us) == -EBUSY); /* a writer holds the lock */
    vt_store_writer_abort(w);
    vt_store_totals tot;
    CHECK_RC(vt_store_get_totals(s, &tot));
    CHECK(tot.format_version == 1);

    CHECK_RC(vt_store_upgrade(s, &us));
    CHECK(us.from_version == 1 && us.to_version == 2 && us.chunks == tot.chunks &&
          us.bytes_read == tot.stored_bytes);
    CHECK_RC(vt_store_get_totals(s, &tot));
    CHECK(tot.format_version == 2);
    CHECK_RC(vt_store_upgrade(s, &us));
    CHECK(us.from_version == 2 && us.to_version == 2 && us.chunks == 0);
    vt_store_close(s);

    /* handles of before the upgrade read the new records and write the new format */
    check_v1_tensor(old_ro, "a", VT_FMT_Q8_0);
    check_v1_tensor(old_ro, "b", VT_FMT_NF4);
    CHECK_RC(vt_store_writer_begin(old_rw, &w));
    CHECK_RC(tu_put_gen(w, "n", 4, 30, 100, 8));
    CHECK_RC(vt_store_writer_commit(w));
    vt_chunk_info ci;
    CHECK_RC(vt_store_chunk_info(old_rw, "n", 1, &ci));
    vt_tensor_info tn, ta;
    CHECK_RC(vt_store_stat(old_rw, "n", &tn));
    CHECK_RC(vt_store_stat(old_rw, "a", &ta));
    CHECK(ci.checksum_seed == st_chunk_seed(2, tn.id, 1) && ci.checksum_seed);
    CHECK(shard_header_version(old_rw, ci.shard_id) == 2);
    vt_store_close(old_ro);
    vt_store_close(old_rw);
    uint8_t rec[ST_CHUNK_REC_LEN], r0[ST_CHUNK_REC_LEN], r1[ST_CHUNK_REC_LEN];
    rec_get(path, tn.id, 1, rec);
    CHECK(rec[0] == 2);
    rec_get(path, ta.id, 0, r0);
    CHECK(r0[0] == 2);

    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    probs pr;
    CHECK(verify_problems(s, &pr) == 0);
    check_v1_tensor(s, "a", VT_FMT_Q8_0);
    check_v1_tensor(s, "b", VT_FMT_NF4);
    check_v1_tensor(s, "c", VT_FMT_F32);
    uint32_t gen = 0;
    CHECK(tu_check_gen(s, "n", &gen) == 0 && gen == 4);
    vt_store_close(s);

    /* a's chunks 0 and 1 trade locations: format 1 missed it, format 2 does not */
    rec_get(path, ta.id, 1, r1);
    swap_locations(path, ta.id, r0, r1);
    CHECK_RC(vt_store_open(path, VT_STORE_RDONLY, NULL, &s));
    void *buf = malloc(ta.raw_bytes);
    expect_mismatch(s, "a", 0, buf, ta.raw_bytes);
    free(buf);
    vt_store_close(s);

    /* a damaged chunk stops the upgrade before anything changes */
    v1_copy(dir, "bad", path, sizeof path);
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return;
    CHECK_RC(vt_store_chunk_info(s, "a", 2, &ci));
    char sp[4400], ip[4400];
    CHECK_RC(vt_store_shard_path(s, ci.shard_id, sp, sizeof sp));
    int fd = open(sp, O_RDWR);
    uint8_t byte = 0;
    CHECK(fd >= 0 && pread(fd, &byte, 1, (off_t)ci.offset + 5) == 1);
    byte ^= 0x10;
    CHECK(fd >= 0 && pwrite(fd, &byte, 1, (off_t)ci.offset + 5) == 1);
    if (fd >= 0) close(fd);
    snprintf(ip, sizeof ip, "%s/index/data.mdb", path);
    uint64_t before = file_hash(ip);
    int rc = vt_store_upgrade(s, &us);
    printf("  upgrade: %s\n", vt_store_errmsg(s));
    CHECK(rc == VT_ECORRUPT && strstr(vt_store_errmsg(s), "tensor a chunk 2") &&
          strstr(vt_store_errmsg(s), "checksum mismatch") &&
          strstr(vt_store_errmsg(s), "not upgraded"));
    CHECK_RC(vt_store_get_totals(s, &tot));
    CHECK(tot.format_version == 1);
    vt_store_close(s);
    CHECK(file_hash(ip) == before);

    /* a store with no chunks left */
    v1_copy(dir, "empty", path, sizeof path);
    CHECK_RC(vt_store_open(path, VT_STORE_RDWR, NULL, &s));
    if (!s) return;
    uint64_t nrm = 0;
    CHECK_RC(vt_store_remove(s, "*", &nrm));
    CHECK(nrm == 3);
    CHECK_RC(vt_store_upgrade(s, &us));
    CHECK(us.from_version == 1 && us.to_version == 2 && us.chunks == 0);
    CHECK(verify_problems(s, &pr) == 0);
    vt_store_close(s);

    /* the command */
    const char *bin = getenv("VT_BIN");
    if (bin && !access(bin, X_OK)) {
        static char cmd[40000];
        v1_copy(dir, "cli", path, sizeof path);
        snprintf(cmd, sizeof cmd,
                 "'%s' upgrade '%s' > '%s/up.txt' && '%s' upgrade '%s' >> '%s/up.txt'", bin, path,
                 dir, bin, path, dir);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd,
                 "grep -q 'format version 1 -> 2, 7 chunk record(s) rewritten' '%s/up.txt' && grep "
                 "-q 'already format version 2' '%s/up.txt'",
                 dir, dir);
        CHECK(system(cmd) == 0);
        snprintf(cmd, sizeof cmd,
                 "'%s' upgrade '%s/bad' 2> '%s/err.txt'; test $? = 1 && grep -q 'checksum "
                 "mismatch' '%s/err.txt'",
                 bin, dir, dir, dir);
        CHECK(system(cmd) == 0);
        /* verify suggests the upgrade for a format-1 store only */
        v1_copy(dir, "note", path, sizeof path);
        snprintf(cmd, sizeof cmd,
                 "'%s' verify '%s' 2> '%s/n1.txt' && grep -q 'vtstore upgrade' '%s/n1.txt' && "
                 "'%s' upgrade '%s' > /dev/null && '%s' verify '%s' 2> '%s/n2.txt' && "
                 "test ! -s '%s/n2.txt'",
                 bin, path, dir, dir, bin, path, bin, path, dir, dir);
        CHECK(system(cmd) == 0);
    }
}

int main(void) {
    vt_test_seed();
    char dir[4096];
    vt_test_tmpdir("test_store_format", dir, sizeof dir);
    test_v2(dir);
    test_v1(dir);
    test_upgrade(dir);
    return vt_test_done("test_store_format");
}
